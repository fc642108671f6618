"""Pure, deterministic simulation core: no files, no Optuna, no CLI.

Every random draw takes an explicit ``torch.Generator``.
"""
