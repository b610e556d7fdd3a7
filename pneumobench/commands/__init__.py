"""Sub-commands beyond run / leaderboard / report / models, one module each: argument parsing
(``add_parser``) and the action (``main``), so ``cli.py`` stays a dispatcher."""
