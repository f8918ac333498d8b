# Plain stochastic gradient descent, as torch.optim.SGD.
def train(w, g, lr):
    update = g * lr
    return update
