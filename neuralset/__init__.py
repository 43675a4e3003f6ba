"""neuralset."""
