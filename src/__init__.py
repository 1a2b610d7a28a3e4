"""Train an MLP on MNIST, embed its hidden layers in 2-D and score the maps by kNN accuracy."""
