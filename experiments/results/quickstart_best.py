# The best program of a quickstart search (evosearch search experiments/quickstart.toml, 2026-11-25,
# 385 evaluations in 150 s on 2 workers; proxy fitness 0.998 vs the warm start 0.919), simplified.
# Fitness 1.0 is tuned AdamW's validation loss, 0 the untrained model's. Re-measured on 2026-11-30 on
# another CPU (python experiments/score.py experiments/results/quickstart_best.py --tasks digits_mlp
# large_batch): fitness 0.971, not 0.998; val loss 0.0382 on digits_mlp (1.05x tuned AdamW's, accuracy
# 0.987) and 0.566 on large_batch (1.10x, accuracy 0.811). The warm start re-measured 0.919 (2.6x, 1.25x).
def train(w, g, m, v, lr):
    g2 = cube(g)
    m = interp(g, m, 0.9)
    v = interp(g2, v, 0.999)
    sqrt_v = sqrt(v)
    lr = sqrt(lr)
    update = m / sqrt_v
    lr = lr * 0.000719
    update = update * lr
    return update, m, v
