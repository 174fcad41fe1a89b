"""Runs you can keep: the run file (``runfile``), and the player that feeds a model from one
(``player``), whether a recording opened from a file or the live window's last minutes."""
