"""Running training: the scheduler, worker processes and their registry, and the training loop itself."""
