"""Datasets: the catalog, the file readers, finding and loading them, and the tf.data inputs."""
