"""The production rules: one engine shared by `callplatform validate` and the operator.

`check_platform(platform, secrets, environment)` judges a CallPlatform with the
Secrets of its namespace; `check_env(variables, environment)` judges the same
checklist given as an env file. `RULES` is the catalogue that docs/rules.md shows.
"""

from callplatform.rules.catalogue import RULES, Rule
from callplatform.rules.engine import SecretLookup, Secrets, check_env, check_platform

__all__ = ["RULES", "Rule", "SecretLookup", "Secrets", "check_env", "check_platform"]
