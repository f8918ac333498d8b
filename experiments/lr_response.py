"""Does an exported optimizer follow the learning rate it is given?

    python experiments/lr_response.py RUN/discovered.py [MORE.py ...] [--class-name Discovered]

Trains one small regression model (8-16-1 MLP, 256 points, 100 full-batch steps, seed 0) with the
optimizer class of each module at lr 0.1, 1 and 10, and with an LR scheduler that holds lr at 0, and
prints the final training loss of each. An optimizer that ignores lr prints the same loss in every
column; one that follows it does not, and stays at the untrained loss when lr is 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import warnings

import torch

LRS = (0.1, 1.0, 10.0)


def load(path: str, class_name: str):
    spec = importlib.util.spec_from_file_location("exported", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, class_name)


def final_loss(cls, lr: float, hold_at_zero: bool = False) -> float:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # an lr-ignoring optimizer warns; this script measures it
        opt = cls(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.0) if hold_at_zero else None
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(256, 8, generator=gen)
    y = 2 * x[:, :1] - x[:, 1:2]
    for _ in range(100):
        opt.zero_grad()
        ((model(x) - y) ** 2).mean().backward()
        opt.step()
        if schedule:
            schedule.step()
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="+")
    ap.add_argument("--class-name", default="Discovered")
    args = ap.parse_args()
    print(f"| module | {' | '.join(f'lr {lr:g}' for lr in LRS)} | lr held at 0 |\n|---|{'---:|' * (len(LRS) + 1)}")
    for path in args.modules:
        cls = load(path, args.class_name)
        losses = [final_loss(cls, lr) for lr in LRS] + [final_loss(cls, 1.0, hold_at_zero=True)]
        print(f"| {path} | {' | '.join(f'{v:.4g}' for v in losses)} |")


if __name__ == "__main__":
    main()
