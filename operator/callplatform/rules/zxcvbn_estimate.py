"""zxcvbn's guess estimate, computed with zxcvbn's own matchers, data and scoring, only faster.

Two changes, neither of which can change a result (tests/rules/test_zxcvbn_estimate.py compares
every match list and every estimate with zxcvbn's on a corpus and on random values):

- Dictionary matching (plain, reversed and l33t, most of zxcvbn's time) looks words up in one
  merged frequency list (lowest rank per word; the estimate uses only a word's rank, never its
  list) and only tries substrings that can still be a word: zxcvbn tries every substring, but a
  substring of 3 or more characters can only match a word that starts with its first 3
  characters, and no such word is longer than the longest one with that prefix.
- `at_least_log10` answers "is the estimate at least 10^x?" without zxcvbn's search for the
  best match sequence (the other third of its time) when a cheap lower bound already says yes.
  zxcvbn's estimate is l! * (product of the l pieces' guesses) + 10000^(l-1) for some sequence
  of l matches and brute-force runs covering the value, so it is at least 10^12 once l >= 4; for
  l <= 3 the smallest product over all such coverings (each piece's guesses as zxcvbn counts
  them) is a lower bound. Only when the bound falls short does the full search run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from itertools import chain
from operator import itemgetter
from typing import Any

Match = dict[str, Any]
MIN_GROWING_SEQUENCE_LOG10 = 4.0  # log10 of zxcvbn's MIN_GUESSES_BEFORE_GROWING_SEQUENCE (10000)
_LOG10_ONE_CHAR = math.log10(11)  # a one-character brute-force run counts 11 guesses
_FLOAT_SLACK = 1e-6  # far above any rounding in zxcvbn's Decimal or our float arithmetic


class _Dictionary:
    """zxcvbn's frequency lists as one word -> lowest rank map, and for each prefix of 3 to 5
    characters the length of the longest word that starts with it."""

    PREFIX_LENGTHS = (3, 4, 5)

    def __init__(self, ranked: Mapping[str, Mapping[str, int]]) -> None:
        pairs = chain.from_iterable(ranked[name].items() for name in ranked if name != "user_inputs")
        # Highest rank first, so the lowest rank of a word is the one dict() keeps.
        self.ranks: dict[str, int] = dict(sorted(pairs, key=itemgetter(1), reverse=True))
        by_length = sorted(self.ranks, key=len)  # the longest word of a prefix is the one kept
        self.longest: tuple[tuple[int, dict[str, int]], ...] = tuple(
            (k, {word[:k]: len(word) for word in by_length if len(word) >= k}) for k in self.PREFIX_LENGTHS
        )

    def longest_word_at(self, lower: str, i: int) -> int:
        """No word is longer than this among those that lower[i:] can start with."""
        limit = 2
        for k, longest in self.longest:
            found = longest.get(lower[i : i + k])
            if found is None:  # no word of k or more characters starts here
                return min(limit, k - 1)
            limit = found
        return limit

    def longest_translated_word(self, window: list[tuple[str, ...]]) -> int:
        """At least longest_word_at(t, 0) for every string t taking one character from each choice."""
        prefixes = [""]
        for k, choices in enumerate(window, start=1):
            prefixes = [prefix + char for prefix in prefixes for char in choices]
            if k >= self.PREFIX_LENGTHS[0]:
                longest = self.longest[k - self.PREFIX_LENGTHS[0]][1]
                prefixes = [prefix for prefix in prefixes if prefix in longest]
                if not prefixes:  # no word of k or more characters starts with any of them
                    return max(2, k - 1)
        if len(window) < self.PREFIX_LENGTHS[-1]:
            return max(2, len(window))  # the value ends: no longer match
        return max(self.longest[-1][1][prefix] for prefix in prefixes)


_LOADED: list[_Dictionary] = []


def _dictionary() -> _Dictionary:
    if not _LOADED:
        from zxcvbn import matching  # imported on first use: building its lists takes a while

        _LOADED.append(_Dictionary(matching.RANKED_DICTIONARIES))
    return _LOADED[0]


def dictionary_match(password: str, dictionary: _Dictionary) -> list[Match]:
    """zxcvbn.matching.dictionary_match against the merged list, trying only possible words."""
    lower = password.lower()
    length = len(password)
    if len(lower) != length:  # lower() lengthened a character: zxcvbn's own loop, index for index
        from zxcvbn import matching

        return list(matching.dictionary_match(password, {"merged": dictionary.ranks}))
    ranks = dictionary.ranks
    matches: list[Match] = []
    for i in range(length):
        for j in range(i, min(length, i + dictionary.longest_word_at(lower, i))):
            word = lower[i : j + 1]
            rank = ranks.get(word)
            if rank is not None:
                matches.append(
                    {
                        "pattern": "dictionary",
                        "i": i,
                        "j": j,
                        "token": password[i : j + 1],
                        "matched_word": word,
                        "rank": rank,
                        "dictionary_name": "merged",
                        "reversed": False,
                        "l33t": False,
                    }
                )
    return matches  # already in (i, j) order


def reverse_dictionary_match(password: str, dictionary: _Dictionary) -> list[Match]:
    """zxcvbn.matching.reverse_dictionary_match, with the dictionary matching above."""
    matches = dictionary_match(password[::-1], dictionary)
    for match in matches:
        match["token"] = match["token"][::-1]
        match["reversed"] = True
        match["i"], match["j"] = len(password) - 1 - match["j"], len(password) - 1 - match["i"]
    return sorted(matches, key=itemgetter("i", "j"))


def l33t_match(password: str, dictionary: _Dictionary) -> list[Match]:
    """zxcvbn.matching.l33t_match, with the dictionary matching above."""
    from zxcvbn import matching

    matches: list[Match] = []
    for sub in matching.enumerate_l33t_subs(matching.relevant_l33t_subtable(password, matching.L33T_TABLE)):
        if not sub:
            break
        subbed = matching.translate(password, sub)
        for match in dictionary_match(subbed, dictionary):
            token = password[match["i"] : match["j"] + 1]
            if token.lower() == match["matched_word"]:
                continue  # only matches that contain an actual substitution
            match_sub = {subbed_chr: chr_ for subbed_chr, chr_ in sub.items() if subbed_chr in token}
            match["l33t"] = True
            match["token"] = token
            match["sub"] = match_sub
            match["sub_display"] = ", ".join(f"{k} -> {v}" for k, v in match_sub.items())
            matches.append(match)
    matches = [match for match in matches if len(match["token"]) > 1]
    return sorted(matches, key=itemgetter("i", "j"))


def omnimatch(password: str) -> list[Match]:
    """zxcvbn.matching.omnimatch: the same matches in the same order (dictionary names aside)."""
    from zxcvbn import matching

    dictionary = _dictionary()
    matches = dictionary_match(password, dictionary)
    matches += reverse_dictionary_match(password, dictionary)
    matches += l33t_match(password, dictionary)
    for matcher in (
        matching.spatial_match,
        matching.repeat_match,
        matching.sequence_match,
        matching.regex_match,
        matching.date_match,
    ):
        matches += matcher(password)
    return sorted(matches, key=itemgetter("i", "j"))


def guesses_log10(password: str) -> float:
    """zxcvbn's `guesses_log10` for the password (zxcvbn.zxcvbn(password)["guesses_log10"])."""
    from zxcvbn import scoring

    return float(scoring.most_guessable_match_sequence(password, omnimatch(password))["guesses_log10"])


def at_least_log10(password: str, threshold: float) -> float | None:
    """None if zxcvbn's estimate is at least 10^threshold, else the estimate's `guesses_log10`."""
    from zxcvbn import scoring

    if password and _coarse_lower_bound_log10(password) >= threshold + _FLOAT_SLACK:
        return None
    matches = omnimatch(password)
    if password and _lower_bound_log10(password, matches) >= threshold + _FLOAT_SLACK:
        return None
    estimate = float(scoring.most_guessable_match_sequence(password, matches)["guesses_log10"])
    return None if estimate >= threshold else estimate


def _lower_bound_log10(password: str, matches: list[Match]) -> float:
    """A lower bound of log10 of zxcvbn's estimate, from every covering by at most 3 pieces.

    best[l][k] is the smallest log10 product of guesses of l pieces covering password[0..k]; a
    piece is a match (its guesses as zxcvbn's scoring counts them, stored on the match as its
    search would) or a brute-force run (10^length guesses, 11 for one character).
    """
    from zxcvbn import scoring

    n = len(password)
    ending: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    for match in matches:
        guesses = scoring.estimate_guesses(match, password)
        ending[match["j"]].append((match["i"], math.log10(guesses)))
    inf = math.inf
    best = [[inf] * n for _ in range(4)]
    for k in range(n):
        single = _LOG10_ONE_CHAR if k == 0 else float(k + 1)
        best[1][k] = min([single, *(log for i, log in ending[k] if i == 0)])
    for pieces in (2, 3):
        previous, current = best[pieces - 1], best[pieces]
        run_start = inf  # min over i in 1..k-1 of previous[i-1] - i: runs of 2 or more ending at k
        for k in range(1, n):
            if k >= 2:
                run_start = min(run_start, previous[k - 2] - (k - 1))
            candidates = [previous[k - 1] + _LOG10_ONE_CHAR, run_start + k + 1]
            candidates += [previous[i - 1] + log for i, log in ending[k] if i > 0]
            current[k] = min(candidates)
    bound = 3 * MIN_GROWING_SEQUENCE_LOG10  # four or more pieces
    for pieces in (1, 2, 3):
        product = best[pieces][n - 1]
        if product == inf:
            continue
        scaled = math.log10(math.factorial(pieces)) + product
        additive = MIN_GROWING_SEQUENCE_LOG10 * (pieces - 1)
        high, low = max(scaled, additive), min(scaled, additive)
        bound = min(bound, high + math.log10(1 + 10 ** (low - high)))
    return bound


_DATE_CHARACTERS = re.compile(r"[\d\s/\\_.-]+")  # every character zxcvbn's two date patterns take
_ADJACENT: set[tuple[str, str]] = set()


def _adjacent_keys() -> set[tuple[str, str]]:
    """(a, b) when b is next to a in any of zxcvbn's keyboard graphs, as its spatial matcher reads them."""
    if not _ADJACENT:
        from zxcvbn import matching

        for graph in matching.GRAPHS.values():
            for key, neighbours in graph.items():
                _ADJACENT.update((key, char) for neighbour in neighbours if neighbour for char in neighbour)
    return _ADJACENT


def match_reach(password: str) -> list[int] | None:
    """For each position, a length no match of zxcvbn's that contains the position can exceed when
    the match starts or ends there; None if it cannot be said cheaply (lower() changes lengths).

    Dictionary words (plain, l33t with any substitution of its first characters, reversed) are
    bounded by the longest word with their prefix; keyboard walks by the run of adjacent keys;
    dates by the run of digits and separators (at most 10); repeats, sequences and recent years
    are zxcvbn's own spans.
    """
    from zxcvbn import matching

    n = len(password)
    lower = password.lower()
    if len(lower) != n:
        return None
    dictionary = _dictionary()
    reach = [dictionary.longest_word_at(lower, i) for i in range(n)]
    backwards = lower[::-1]
    for i in range(n):  # a reversed word ends at n-1-i
        reach[n - 1 - i] = max(reach[n - 1 - i], dictionary.longest_word_at(backwards, i))
    letters = _l33t_letters()
    options = [(char.lower(), *letters.get(char, ())) for char in password]
    longest_prefix = dictionary.PREFIX_LENGTHS[-1]
    next_l33t = n  # the first position at or after i whose character may stand for a letter
    for i in range(n - 1, -1, -1):
        if len(options[i]) > 1:
            next_l33t = i
        if next_l33t < i + longest_prefix:
            window = options[i : i + longest_prefix]
            reach[i] = max(reach[i], dictionary.longest_translated_word(window))
    adjacent = _adjacent_keys()
    run = 1
    for k in range(n - 2, -1, -1):  # run of adjacent keys starting at k
        run = run + 1 if (password[k], password[k + 1]) in adjacent else 1
        reach[k] = max(reach[k], run)
    for found in _DATE_CHARACTERS.finditer(password):
        for k in range(found.start(), found.end()):
            reach[k] = max(reach[k], min(10, found.end() - k))
    spans = [(m["i"], m["j"]) for m in matching.sequence_match(password) + matching.regex_match(password)]
    for i, j in spans + _repeat_spans(password):
        reach[i] = max(reach[i], j - i + 1)
    return reach


_L33T_LETTERS: dict[str, tuple[str, ...]] = {}


def _l33t_letters() -> dict[str, tuple[str, ...]]:
    """Each l33t character of zxcvbn's table, and the letters it may stand for."""
    if not _L33T_LETTERS:
        from zxcvbn import matching

        for letter, subs in matching.L33T_TABLE.items():
            for sub in subs:
                _L33T_LETTERS[sub] = (*_L33T_LETTERS.get(sub, ()), letter)
    return _L33T_LETTERS


def _repeat_spans(password: str) -> list[tuple[int, int]]:
    """The spans of zxcvbn.matching.repeat_match, found the same way, without scoring the base."""
    greedy, lazy = re.compile(r"(.+)\1+"), re.compile(r"(.+?)\1+")
    spans: list[tuple[int, int]] = []
    last_index = 0
    while last_index < len(password):
        greedy_match = greedy.search(password, pos=last_index)
        lazy_match = lazy.search(password, pos=last_index)
        if not greedy_match or not lazy_match:
            break
        match = greedy_match if len(greedy_match.group(0)) > len(lazy_match.group(0)) else lazy_match
        i, j = match.span()[0], match.span()[1] - 1
        spans.append((i, j))
        last_index = j + 1
    return spans


def _coarse_lower_bound_log10(password: str) -> float:
    """A lower bound of log10 of zxcvbn's estimate from `match_reach` alone, without matching.

    A covering by l pieces, m of them matches and l - m brute-force runs, has m matches of at least
    10 guesses each (1 for a match of the whole value) whose lengths add up to at most the m largest
    reaches (disjoint pieces contain disjoint positions), and runs of at least 10^length guesses.
    """
    reach = match_reach(password)
    if reach is None:
        return -math.inf
    n = len(password)
    largest = sorted(reach, reverse=True)[:3]
    bound = 3 * MIN_GROWING_SEQUENCE_LOG10  # four or more pieces
    for pieces in (1, 2, 3):
        for matched in range(pieces + 1):
            covered = sum(largest[:matched])
            if matched == pieces and covered < n:
                continue  # matches alone cannot cover the value
            brute_force = 0 if matched == pieces else max(pieces - matched, n - covered)
            match_guesses = 0.0 if pieces == 1 else float(matched)  # log10: >= 10 each
            scaled = math.log10(math.factorial(pieces)) + match_guesses + brute_force
            additive = MIN_GROWING_SEQUENCE_LOG10 * (pieces - 1)
            high, low = max(scaled, additive), min(scaled, additive)
            bound = min(bound, high + math.log10(1 + 10 ** (low - high)))
    return bound
