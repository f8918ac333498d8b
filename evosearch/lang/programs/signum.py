# Signum (Bernstein et al. 2018): the sign of a momentum of the gradient.
def train(w, g, m, lr):
    m = interp(g, m, 0.9)
    update = sign(m)
    update = update * lr
    return update, m
