# signSGD (Bernstein et al. 2018): the sign of the gradient.
def train(w, g, lr):
    update = sign(g)
    update = update * lr
    return update
