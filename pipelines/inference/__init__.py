"""Using a trained model: preprocessing drawings and uploads, prediction, evaluation."""
