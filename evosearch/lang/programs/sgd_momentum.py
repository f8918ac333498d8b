# SGD with heavy-ball momentum 0.9, as torch.optim.SGD(momentum=0.9).
def train(w, g, m, lr):
    m = m * 0.9
    m = m + g
    update = m * lr
    return update, m
