"""AutoAttack (Croce & Hein 2020) through `pyautoattack`, the original code, in one process or shared out.

In one process `run_standard_evaluation` runs as released. In a run of several processes each attack of the
sequence is shared out by its batches: AutoAttack forms the batches from the points still robust, and every
attack's `perturb` re-seeds itself per batch, so a batch attacked in any process gives what it gives in one
process. Between two attacks the processes combine which points fell, and so form the next attack's batches
exactly as one process does. The per-point results equal a one-process run's (tested).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from . import distributed
from .attacks import attacking
from .models import for_attacks
from .validation import check_choice, check_eps, check_positive, fail

AUTOATTACK_VERSIONS = ("standard", "subset", "square", "smoke")
APGD_ITERATIONS = 100  # AutoAttack's own


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def autoattack(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, version: str = "standard",
               batch_size: int = 500, seed: int = 0, queries: int = 5000,
               iterations: int = APGD_ITERATIONS) -> tuple[torch.Tensor, list[str]]:
    """AutoAttack: "standard" (APGD-CE, APGD-T, FAB-T, Square), "subset" (APGD-CE + APGD-T with the standard
    settings: 1 restart, 9 target classes), "square" (the black-box Square attack alone, with `queries` queries
    per point: a gradient-masking check) or "smoke" (the subset's attacks at `iterations` iterations instead of
    100: what a `--smoke` run uses to check the wiring in seconds; never a robustness number).

    Returns the adversarial points and AutoAttack's own sanity-check warnings (e.g. zero gradients),
    which callers should report rather than drop.
    """
    check_eps("eps", eps)
    check_choice("version", version, AUTOATTACK_VERSIONS)
    check_positive("queries", queries, integer=True)
    check_positive("iterations", iterations, integer=True)
    logger = logging.getLogger("auto-attack")
    collect = _Collect()
    logger.addHandler(collect)
    propagate, logger.propagate = logger.propagate, False
    try:
        with attacking(model) as model:
            adversary = _adversary(for_attacks(model), x, eps=eps, version=version, seed=seed, queries=queries,
                                   iterations=iterations)
            if distributed.active():
                x_adv = _shared_evaluation(adversary, x.detach(), y, batch_size, collect.messages)
            else:
                x_adv, _ = adversary.run_standard_evaluation(x.detach().clone(), y.clone(), batch_size=batch_size)
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
    return x_adv.to(x.device), collect.messages


def _adversary(model: nn.Module, x: torch.Tensor, *, eps: float, version: str, seed: int, queries: int,
               iterations: int):
    from pyautoattack import AutoAttack

    if version == "standard":
        adversary = AutoAttack(model, norm="Linf", eps=eps, version="standard", device=x.device, seed=seed)
    elif version == "square":
        adversary = AutoAttack(model, norm="Linf", eps=eps, version="custom", device=x.device, seed=seed,
                               attacks=["square"])
        adversary.square.n_queries = queries
    else:
        adversary = AutoAttack(model, norm="Linf", eps=eps, version="custom", device=x.device, seed=seed,
                               attacks=["apgd-ce", "apgd-t"])
        adversary.apgd.n_restarts = 1
        with torch.no_grad():
            num_classes = model(x[:1]).shape[1]
        adversary.apgd_targeted.n_target_classes = min(9, num_classes - 1)
        adversary.apgd_targeted.n_restarts = 1
        if version == "smoke":
            for attack in (adversary.apgd, adversary.apgd_targeted):
                _set_iterations(attack, iterations)
    adversary.verbose = False
    return adversary


def _set_iterations(apgd, iterations: int) -> None:
    """An APGD attack's iteration count, with the step-size schedule its constructor derives from it."""
    apgd.n_iter, apgd.n_iter_orig = iterations, iterations
    apgd.n_iter_2, apgd.n_iter_min, apgd.size_decr = (max(int(f * iterations), 1) for f in (0.22, 0.06, 0.03))


def _perturb(adversary, attack: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """One batch of one attack of the sequence, set up as `run_standard_evaluation` sets it up."""
    if attack == "apgd-ce":
        adversary.apgd.loss, adversary.apgd.seed = "ce", adversary.get_seed()
        return adversary.apgd.perturb(x, y)
    if attack == "apgd-t":
        adversary.apgd_targeted.seed = adversary.get_seed()
        return adversary.apgd_targeted.perturb(x, y)
    if attack == "fab-t":
        adversary.fab.targeted, adversary.fab.n_restarts, adversary.fab.seed = True, 1, adversary.get_seed()
        return adversary.fab.perturb(x, y)
    if attack == "square":
        adversary.square.seed = adversary.get_seed()
        return adversary.square.perturb(x, y)
    fail("attack", attack, "one of AutoAttack's 'apgd-ce', 'apgd-t', 'fab-t' or 'square'")


def _shared_evaluation(adversary, x: torch.Tensor, y: torch.Tensor, batch_size: int,
                       messages: list[str]) -> torch.Tensor:
    """`run_standard_evaluation`'s sequence with each attack's batches shared out over the processes. `messages`
    (what AutoAttack logs) gets each batch's warnings in the order one process logs them."""
    from pyautoattack import checks

    first, log = x[:batch_size], adversary.logger
    checks.check_randomized(adversary.get_logits, first, y[:batch_size], bs=batch_size, logger=log)
    n_cls = checks.check_range_output(adversary.get_logits, first, logger=log)
    checks.check_dynamic(adversary.model, first, False, logger=log)
    checks.check_n_classes(n_cls, adversary.attacks_to_run, adversary.apgd_targeted.n_target_classes,
                           adversary.fab.n_target_classes, logger=log)
    with torch.no_grad():
        robust = _shared(lambda rows: (adversary.get_logits(x[rows]).argmax(1) == y[rows]).long(),
                         torch.arange(len(x), device=x.device), len(x), batch_size, messages).bool()
        accuracy = {"clean": robust.sum().item() / len(x)}
        x_adv, fell_here = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
        for attack in adversary.attacks_to_run:
            if not robust.any():
                break

            def fallen(rows: torch.Tensor) -> torch.Tensor:
                adv = _perturb(adversary, attack, x[rows], y[rows])
                fell = adversary.get_logits(adv).argmax(1) != y[rows]
                x_adv[rows[fell]], fell_here[rows[fell]] = adv[fell], True
                return fell.long()

            robust &= _shared(fallen, robust.nonzero().flatten(), len(x), batch_size, messages) == 0
            accuracy[attack] = robust.sum().item() / len(x)
        checks.check_square_sr(accuracy, logger=log)
        fell_anywhere = distributed.sum_over_processes(fell_here.long()) > 0
        return torch.where(fell_anywhere.reshape(-1, *[1] * (x.dim() - 1)), distributed.assemble(x_adv, fell_here), x)


def _shared(batch_fn, points: torch.Tensor, n: int, batch_size: int, messages: list[str]) -> torch.Tensor:
    """batch_fn(rows) -> one integer per row, run on this process's batches of `points` (as one process forms
    them) and combined over the processes into one value per point of the n (0 where no batch holds it). What
    each batch logged joins `messages` in batch order, from whichever process ran it."""
    values = torch.zeros(n, dtype=torch.long, device=points.device)
    ranges = distributed.batch_ranges(len(points), batch_size)
    mine, _ = distributed.my_batches(len(points), batch_size)
    logged = {}
    for b in mine:
        rows, before = points[ranges[b][0]:ranges[b][1]], len(messages)
        values[rows] = batch_fn(rows)
        logged[b], messages[before:] = messages[before:], []
    every = {b: logs for per_process in distributed.gather_objects(logged) for b, logs in per_process.items()}
    for b in sorted(every):
        messages.extend(every[b])
    return distributed.sum_over_processes(values)
