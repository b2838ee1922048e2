"""rules/zxcvbn_estimate.py gives zxcvbn's own answers: the same matches, the same estimate, and a
strength verdict its shortcuts never change. Checked on a corpus of the patterns zxcvbn knows (words,
l33t, reversed words, keyboard walks, dates, repeats, sequences, years) and on generated values."""

from __future__ import annotations

import random
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zxcvbn import matching, zxcvbn

from callplatform.rules import zxcvbn_estimate
from callplatform.rules.secret_values import MIN_GUESSES_LOG10

WORDS = [
    "password",
    "dragon",
    "monkey",
    "summer",
    "secret",
    "value",
    "football",
    "qwerty",
    "smith",
    "iloveyou",
]
PIECES = [*WORDS, "4", "3", "0", "1", "@", "$", "!", "2024", "1987", "11/11/1991", "1-1-91", "abcdef", "9753",
          "zxcvbn", "qazwsx", "1qaz2wsx", "aaa", "abcabc", "-", "_", ".", " ", "İ", "é", "ß", "Ⅻ", "٣"]  # fmt: skip


def _corpus() -> list[str]:
    rng = random.Random(20261202)
    values = ["changeme" * 4, "dragonmonkeyfootball", "Tr0ub4dor&3", "drowssap-summer2024", "qwertyuiop",
              "aaaaaaaaaaaaaaaa", "abcdefgh12345678", "P@ssw0rd!", "S3cr3t-JWT-value-Wq9Xe4Rt7Yu2Io5Pa8",
              "é" * 20, "x", "short", "İstanbul", "11111111111", "2015_06_04", "p4$$w0rd" * 3, "19871987", "abcabcabc1"]  # fmt: skip
    for _ in range(120):
        value = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.3:
            value = value.capitalize()
        values.append((value[::-1] if rng.random() < 0.2 else value)[:72])
    alphabet = string.ascii_letters + string.digits + "-_!@$."
    values += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 72))) for _ in range(60)]
    values += [f"Tp9Lk3Mn7Bv2Cx5Zq8W-{i}" for i in range(10)] + [f"Zr8pQ2vLx7Nd{i:04d}" for i in range(10)]
    return values


CORPUS = _corpus()
VALUES = st.one_of(
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map("".join),
    st.text(alphabet=string.ascii_letters + string.digits + "-_@$!./ ", min_size=1, max_size=40),
    st.text(min_size=1, max_size=24),
)


def _comparable(matches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # re.Match objects compare by identity; their spans are what the scoring reads. A repeat's
    # base_matches hold matches of their own.
    def value(key: str, item: Any) -> Any:
        if key == "regex_match":
            return item.span()
        return _comparable(item) if key == "base_matches" else item

    return [{k: value(k, v) for k, v in m.items()} for m in matches]


def _check(value: str) -> None:
    ranks = zxcvbn_estimate._dictionary().ranks
    assert _comparable(zxcvbn_estimate.omnimatch(value)) == _comparable(
        matching.omnimatch(value, {"merged": ranks})
    )
    expected = zxcvbn(value)["guesses_log10"]
    assert zxcvbn_estimate.guesses_log10(value) == expected
    weak = zxcvbn_estimate.at_least_log10(value, MIN_GUESSES_LOG10)
    assert weak == (expected if expected < MIN_GUESSES_LOG10 else None)
    # The shortcuts' premises: every match fits the reach of a position it contains, and the bounds
    # never exceed the estimate.
    reach = zxcvbn_estimate.match_reach(value)
    if reach is not None:
        for m in matching.omnimatch(value, {"merged": ranks}):
            assert m["j"] - m["i"] + 1 <= max(reach[m["i"]], reach[m["j"]]), m["pattern"]
    assert zxcvbn_estimate._coarse_lower_bound_log10(value) <= expected + 1e-9
    assert zxcvbn_estimate._lower_bound_log10(value, zxcvbn_estimate.omnimatch(value)) <= expected + 1e-9


@pytest.mark.parametrize("value", CORPUS)
def test_the_estimate_and_the_verdict_are_zxcvbns(value: str) -> None:
    _check(value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES)
def test_generated_values_get_zxcvbns_answers(value: str) -> None:
    _check(value)


def test_the_shortcuts_decide_random_secrets_and_weak_values_get_the_full_estimate() -> None:
    """The coarse bound alone proves a random secret strong; a weak value still gets its figure."""
    assert zxcvbn_estimate._coarse_lower_bound_log10("S3cr3t-JWT-value-Wq9Xe4Rt7Yu2Io5Pa8-000123") >= 10
    assert zxcvbn_estimate._coarse_lower_bound_log10("changeme" * 4) < 10
    assert (
        zxcvbn_estimate.at_least_log10("changeme" * 4, MIN_GUESSES_LOG10)
        == zxcvbn("changeme" * 4)["guesses_log10"]
    )
