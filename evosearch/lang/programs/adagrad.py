# Adagrad as torch.optim.Adagrad(eps=1e-8): the division guard is its eps.
def train(w, g, s, lr):
    g2 = square(g)
    s = s + g2
    denom = sqrt(s)
    update = g / denom
    update = update * lr
    return update, s
