"""The one transfer-learning protocol: fit, train step, predict; the device and precision it
runs in; the starting weights every trial and seed of a model shares."""
