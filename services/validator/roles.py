"""Column roles: which of a file's columns holds the review id, title, text, rating and language.

Columns are recognised by the names real review datasets give them — every column name of the
layouts Amazon review data is published in, and the names exports and scrapers commonly use — with
case, spaces, dots, dashes and underscores ignored (`reviewText`, `review_body`, `Review Text` and
`reviews.text` are one name to this module). Names come in two tiers: specific ones
(`review_body`, `star_rating`) and generic ones (`id`, `content`, `body`), and a generic name is a
candidate only when no specific one is present: the Datafiniti export has both `id` (the product's)
and `reviews.id`, and the review id is the latter. Two candidates of the same tier for one role
are ambiguous; the file is refused with both names and the setting that picks one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa

from .checks import CheckFailedError
from .ratings import parse_ratings

Role = Literal["review_id", "title", "text", "rating", "language"]
ROLES: tuple[Role, ...] = ("review_id", "title", "text", "rating", "language")
COLUMN_ROLES_SETTING = "REVIEWS_VALIDATOR_COLUMN_ROLES"
# A column of ratings: nearly every value reads as 1–5, taking at least three of the five values (a
# two-valued label such as polarity 1/2 or 0/1 is not a star rating and is not taken for one).
_RATING_SHARE = 0.95
_RATING_DISTINCT = 3
# Review text is prose: several words on average, and most values with a space in them.
_TEXT_MIN_WORDS = 4.0
_TITLE_MIN_WORDS = 1.5

_SPECIFIC: dict[Role, tuple[str, ...]] = {
    "review_id": ("review_id", "reviews.id", "reviewId", "review_uuid", "review_key"),
    "title": (
        "review_title",
        "review_headline",
        "reviews.title",
        "summary",
        "title",
        "review_summary",
        "headline",
        "review_subject",
    ),
    "text": (
        "review_body",
        "reviewText",
        "reviews.text",
        "text",
        "review_text",
        "verified_reviews",
        "review_content",
        "review_comment",
        "review_description",
        "reviews.body",
        "body_text",
    ),
    "rating": (
        "star_rating",
        "stars",
        "overall",
        "rating",
        "reviews.rating",
        "score",
        "review_rating",
        "review_score",
        "review_stars",
        "stars_rating",
        "rating_value",
        "star_score",
        "overall_rating",
        "customer_rating",
        "user_rating",
    ),
    "language": ("language", "review_language", "language_code", "lang", "locale_language"),
}
# Exports in other languages name their columns in them: the ones of the MARC languages (es, fr, de).
_OTHER_LANGUAGES: dict[Role, tuple[str, ...]] = {
    "title": ("título", "titulo", "titre", "titel"),
    "text": ("texto", "comentario", "reseña", "resena", "commentaire", "avis", "kommentar", "rezension"),
    "rating": (
        "estrellas",
        "puntuación",
        "puntuacion",
        "calificación",
        "calificacion",
        "valoración",
        "valoracion",
        "étoiles",
        "etoiles",
        "sterne",
    ),
    "language": ("idioma", "langue", "sprache"),
}
_GENERIC: dict[Role, tuple[str, ...]] = {
    "review_id": ("id", "uid", "index"),
    "title": ("subject", "heading", "caption"),
    "text": ("review", "content", "body", "comment", "comments", "sentence", "message", "opinion", "feedback_text"),
    "rating": ("star", "ratings", "rate", "grade", "stars_given"),
    "language": ("lang_code", "locale"),
}


def normalise(name: str) -> str:
    """A column name as compared here: lower case, letters and digits only."""
    return re.sub(r"[\W_]+", "", name.casefold())


def _table(names: Mapping[Role, tuple[str, ...]]) -> dict[str, Role]:
    table: dict[str, Role] = {}
    for role, spellings in names.items():
        for spelling in spellings:
            table[normalise(spelling)] = role
    return table


_SPECIFIC_NAMES = _table(_SPECIFIC) | _table(_OTHER_LANGUAGES)
_GENERIC_NAMES = _table(_GENERIC)


def role_of(name: str) -> tuple[Role, int] | None:
    """The role a column name stands for and its tier (0 specific, 1 generic), or None."""
    key = normalise(name)
    if key in _SPECIFIC_NAMES:
        return _SPECIFIC_NAMES[key], 0
    if key in _GENERIC_NAMES:
        return _GENERIC_NAMES[key], 1
    return None


@dataclass(frozen=True)
class RoleCandidates:
    """For each role, the columns that could hold it, best tier only."""

    candidates: dict[Role, tuple[str, ...]]

    @property
    def recognised(self) -> int:
        """Roles with exactly one candidate: how well a row of names reads as a header."""
        return sum(1 for columns in self.candidates.values() if len(columns) == 1)


def _namespace(column: str) -> str | None:
    return column.rsplit(".", 1)[0] if "." in column else None


def role_candidates(columns: Sequence[str]) -> RoleCandidates:
    matches = [(column, match) for column in columns if (match := role_of(column)) is not None]
    # When the review's fields sit under a namespace (Datafiniti's `reviews.text`, `reviews.rating`), a
    # generic name outside it belongs to something else: Datafiniti's bare `id` is the product's.
    namespaces = {_namespace(column) for column, (_, tier) in matches if tier == 0} - {None}
    found: dict[Role, dict[int, list[str]]] = {}
    for column, (role, tier) in matches:
        if tier == 1 and namespaces and _namespace(column) not in namespaces:
            continue
        found.setdefault(role, {}).setdefault(tier, []).append(column)
    # A name repeated in two columns stays twice: which of the two holds the role is as unclear as with two names.
    best = {role: tuple(tiers[min(tiers)]) for role, tiers in found.items()}
    return RoleCandidates({role: best[role] for role in ROLES if role in best})


def assign_roles(columns: Sequence[str], chosen: Mapping[Role, str]) -> dict[Role, str]:
    """Role → column for a file with these columns; `chosen` (the column-roles setting) decides first.

    Raises CheckFailedError when a role has two candidates of the same tier and the setting does not
    say which one holds it.
    """
    assigned: dict[Role, str] = {}
    for role, column in chosen.items():
        if column in columns:
            assigned[role] = column
    taken = set(assigned.values())
    for role, candidates in role_candidates([column for column in columns if column not in taken]).candidates.items():
        if role in assigned:
            continue
        if len(candidates) > 1 and len(set(candidates)) == 1:
            raise CheckFailedError(
                "columns",
                f"column {candidates[0]!r} appears {len(candidates)} times in the header, so which one holds "
                f"the {role} is unclear: rename the others",
                columns=[candidates[0]],
            )
        if len(candidates) > 1:
            example = '{"' + role + '": "' + candidates[0] + '"}'
            raise CheckFailedError(
                "columns",
                f"columns {list(candidates)} could each be the {role} column; say which one with "
                f"{COLUMN_ROLES_SETTING} (e.g. {example}) or rename the other",
                role=role,
                candidates=list(candidates),
            )
        assigned[role] = candidates[0]
    return {role: assigned[role] for role in ROLES if role in assigned}


def _mean_words(values: Sequence[str]) -> float:
    return sum(len(value.split()) for value in values) / len(values) if values else 0.0


def _holds_ratings(values: Sequence[str]) -> bool:
    present = [value for value in values if value.strip()]
    if len(present) < 0.9 * len(values) or not present:
        return False
    stars = parse_ratings(pa.array(present, pa.string())).stars.to_pylist()
    rated = [star for star in stars if star is not None]
    return len(rated) >= _RATING_SHARE * len(present) and len(set(rated)) >= _RATING_DISTINCT


def infer_roles(rows: Sequence[Sequence[str]], width: int) -> dict[Role, int]:
    """Role → column position for a headerless file, from what its columns hold.

    The rating: the one column of star ratings; the text: the column of the longest prose; the
    title: one other column of shorter prose. Nothing is guessed when it is unclear: two columns of
    ratings make no rating, and a file without prose has no text.
    """
    columns = [[row[index] for row in rows] for index in range(width)]
    roles: dict[Role, int] = {}
    ratings = [index for index, values in enumerate(columns) if _holds_ratings(values)]
    if len(ratings) == 1:
        roles["rating"] = ratings[0]
    words = {index: _mean_words(values) for index, values in enumerate(columns) if index not in ratings}
    prose = sorted((index for index, mean in words.items() if mean >= _TEXT_MIN_WORDS), key=lambda i: -words[i])
    if prose:
        roles["text"] = prose[0]
        titles = [index for index, mean in words.items() if index != prose[0] and mean >= _TITLE_MIN_WORDS]
        if len(titles) == 1 and words[titles[0]] < words[prose[0]]:
            roles["title"] = titles[0]
    return {role: roles[role] for role in ROLES if role in roles}
