"""restic's own ``TestApplyPolicy`` fixtures, run through `plan`.

The fixtures (``snapshot_policy_test.go`` and its golden files ``policy_keep_snapshots_<n>``)
come from Debian's source package of restic, fetched and verified by
``scripts/restic_fixtures.sh`` once per session and read here; none of them is kept in this
repository. Every policy is mapped to a `Policy` and planned over restic's input list; the kept
snapshots (time, tags and paths, index by index), the reason texts and restic's remaining
counters must equal the golden file. The only policies left out are the documented deliberate
differences in `KNOWN_DIFFERENCES`, and each of those is checked to still differ, so a difference
that goes away is noticed too. Without the fixtures the tests fail; they never skip.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ctfy_vault.exceptions import PolicyError
from ctfy_vault.retention import Policy, Reason, RetentionPlan, plan, unlimited
from tests.support.restic_golden import (
    FixtureFormatError,
    Fixtures,
    Golden,
    GoPolicy,
    GoSnapshot,
    fetch_fixtures,
    parse_duration,
    parse_golden,
    parse_test_file,
    read_fixtures,
)

KNOWN_DIFFERENCES = {
    0: "empty",
    18: "tags-only",
    19: "tags-only",
    20: "tags-only",
}
"""Policies of restic's test that `plan` deliberately treats otherwise (docs/retention.md).

An empty policy is refused, and with ``allow_empty=True`` keeps everything; restic's
ApplyPolicy keeps nothing (its ``forget`` command refuses such a policy and removes nothing). A
policy of tags alone is refused; restic's keeps only the snapshots matching a tag list, so it
forgets every other one, the newest included.
"""

_COUNT_RULES = ("last", "hourly", "daily", "weekly", "monthly", "yearly")

Content = tuple[datetime, tuple[str, ...], tuple[str, ...]]


@pytest.fixture(scope="session")
def restic_fixtures() -> Fixtures:
    """The fixtures of restic's test, fetched by scripts/restic_fixtures.sh (cached) and parsed."""
    try:
        folder = fetch_fixtures()
    except RuntimeError as err:
        pytest.fail(f"cannot get restic's fixtures: {err}")
    try:
        return read_fixtures(folder)
    except FixtureFormatError as err:
        pytest.fail(f"restic's fixtures changed shape, update tests/restic_golden.py: {err}")


def to_policy(policy: GoPolicy) -> Policy:
    """Map a restic ExpirePolicy with count or window rules to our `Policy`."""
    settings: dict[str, Any] = {
        name: unlimited if count == -1 else count for name, count in policy.counts.items()
    }
    settings.update(policy.windows)
    if policy.tag_lists:
        if any(len(tags) != 1 for tags in policy.tag_lists):
            pytest.fail(f"{{{policy.source}}}: tag lists of several tags have no Policy form")
        settings["tags"] = [tags[0] for tags in policy.tag_lists]
    return Policy(**settings)


def restic_match(reason: Reason) -> str:
    """Return the text restic's ApplyPolicy gives the reason (``oldest daily within 7d``)."""
    if reason.rule == "tags":
        return f"has tags [{reason.tag}]"
    if reason.rule == "within":
        return f"within {reason.window}"
    if reason.rule in _COUNT_RULES:
        text = f"{reason.rule} snapshot"
    elif reason.rule.startswith("within_"):
        text = f"{reason.rule.removeprefix('within_')} within {reason.window}"
    else:
        return f"<{reason.rule}: restic has no such reason>"
    return f"oldest {text}" if reason.oldest else text


def counters(result: RetentionPlan[GoSnapshot], policy: Policy) -> list[dict[str, int]]:
    """Return restic's counters after each kept snapshot: the slots each count rule has left."""
    used = dict.fromkeys(policy.counts(), 0)
    rows = []
    for snapshot in result.keep:
        for reason in result.reasons[snapshot]:
            if reason.rule in used and reason.slot is not None:
                used[reason.rule] = reason.slot
        row = {
            rule: -1 if count is unlimited else count - used[rule]
            for rule, count in policy.counts().items()
        }
        rows.append({rule: left for rule, left in row.items() if left})
    return rows


def differences(index: int, golden: Golden, result: RetentionPlan[GoSnapshot]) -> list[str]:
    """Describe every way a plan differs from restic's golden file, index by index."""
    ours = [snapshot.content for snapshot in result.keep]
    found = []
    if ours != list(golden.keep):
        first = next(
            (
                i
                for i, pair in enumerate(zip(ours, golden.keep, strict=False))
                if pair[0] != pair[1]
            ),
            min(len(ours), len(golden.keep)),
        )
        found.append(
            f"policy {index}: keep differs at index {first} (ours {len(ours)}, restic "
            f"{len(golden.keep)}): ours {ours[first : first + 2]}, restic "
            f"{list(golden.keep[first : first + 2])}"
        )
        return found
    left = counters(result, result.policy)
    for position, (snapshot, expected) in enumerate(zip(result.keep, golden.reasons, strict=True)):
        matches = [restic_match(reason) for reason in result.reasons[snapshot]]
        if expected.snapshot != snapshot.content:
            found.append(f"policy {index}: reasons[{position}] names another snapshot")
        if matches != list(expected.matches):
            found.append(
                f"policy {index}: {snapshot.time.isoformat()} kept for {matches}, restic says "
                f"{list(expected.matches)}"
            )
        if left[position] != expected.counters:
            found.append(
                f"policy {index}: counters after {snapshot.time.isoformat()} are "
                f"{left[position]}, restic says {expected.counters}"
            )
    return found


def test_plan_matches_every_golden_file_of_restic(restic_fixtures: Fixtures) -> None:
    """Every restic policy with rules keeps restic's snapshots, for restic's reasons and counts."""
    found: list[str] = []
    compared = 0
    for index, (policy, golden) in enumerate(
        zip(restic_fixtures.policies, restic_fixtures.golden, strict=True)
    ):
        if index in KNOWN_DIFFERENCES:
            continue
        compared += 1
        result = plan(list(restic_fixtures.snapshots), to_policy(policy))
        found += differences(index, golden, result)
    assert compared == len(restic_fixtures.policies) - len(KNOWN_DIFFERENCES)
    assert not found, f"{restic_fixtures.source}:\n" + "\n".join(found)


def test_known_differences_are_exactly_the_empty_and_tags_only_policies(
    restic_fixtures: Fixtures,
) -> None:
    """The policies left out are exactly the empty and tags-only ones, at the listed indexes."""
    kinds = {
        index: policy.kind
        for index, policy in enumerate(restic_fixtures.policies)
        if policy.kind != "rules"
    }
    assert kinds == KNOWN_DIFFERENCES


def test_empty_policy_still_differs_from_restic(restic_fixtures: Fixtures) -> None:
    """Under an empty policy restic's ApplyPolicy keeps nothing; ours refuses it or keeps all."""
    for index, kind in KNOWN_DIFFERENCES.items():
        if kind != "empty":
            continue
        assert restic_fixtures.golden[index].keep == ()
        with pytest.raises(PolicyError, match="no count or window rule"):
            Policy()
        everything = plan(list(restic_fixtures.snapshots), Policy(allow_empty=True))
        assert len(everything.keep) == len(restic_fixtures.snapshots)
        assert [snapshot.content for snapshot in everything.keep] != list(
            restic_fixtures.golden[index].keep
        )


def test_tags_only_policies_still_differ_from_restic(restic_fixtures: Fixtures) -> None:
    """Under tags alone restic keeps only tagged snapshots, not the newest; ours refuses them."""
    newest = max(restic_fixtures.snapshots, key=lambda snapshot: snapshot.time)
    for index, kind in KNOWN_DIFFERENCES.items():
        if kind != "tags-only":
            continue
        lists = restic_fixtures.policies[index].tag_lists
        tagged = [
            snapshot.content
            for snapshot in sorted(restic_fixtures.snapshots, key=lambda s: s.time, reverse=True)
            if any(set(tags) <= set(snapshot.tags) for tags in lists)
        ]
        assert list(restic_fixtures.golden[index].keep) == tagged
        assert newest.content not in tagged
        with pytest.raises(PolicyError, match="tags alone"):
            Policy(tags={tag for tags in lists for tag in tags})


def test_fixtures_cover_oldest_within_and_identical_times(restic_fixtures: Fixtures) -> None:
    """The fixtures hold the cases this test is for: oldest within a window, identical times."""
    matches = {
        match for golden in restic_fixtures.golden for r in golden.reasons for match in r.matches
    }
    assert any(m.startswith("oldest ") and " within " in m for m in matches)
    assert any(m.startswith("oldest ") and m.endswith(" snapshot") for m in matches)
    times = [snapshot.time for snapshot in restic_fixtures.snapshots]
    assert len(set(times)) < len(times)
    assert any(snapshot.time.microsecond for snapshot in restic_fixtures.snapshots)
    assert restic_fixtures.source.startswith("restic ")


# --------------------------------------------------------------------------------------------------
# The reader refuses shapes it does not know (no download needed).

_GO = """package restic_test

func parseTimeUTC(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	return t.UTC()
}

func TestApplyPolicy(t *testing.T) {
	var testExpireSnapshots = restic.Snapshots{
		{Time: parseTimeUTC("2014-09-01 10:20:30")},
		{Time: parseTimeUTC("2014-08-13 10:20:30.1"), Tags: []string{"foo", "bar"}},
		{Time: parseTimeUTC("2014-08-13 10:20:30"), Tags: []string{"foo"}, Paths: []string{"p"}},
	}

	var tests = []restic.ExpirePolicy{
		{},
		{Daily: 3, Monthly: -1}, // a comment
		{Tags: []restic.TagList{{"foo"}, {"bar", "baz"}}},
		{Within: restic.ParseDurationOrPanic("1y1d1m"),
			WithinDaily: restic.ParseDurationOrPanic("2h")},
	}

	for i, p := range tests {
		keep, remove, reasons := restic.ApplyPolicy(testExpireSnapshots, p)
		goldenFilename := filepath.Join("testdata", fmt.Sprintf("policy_keep_snapshots_%d", i))
	}
}
"""


def test_reader_parses_the_known_shapes() -> None:
    """Snapshots, tags, paths, fractional seconds, counts, -1, tag lists and durations are read."""
    snapshots, policies = parse_test_file(_GO)
    assert [s.time for s in snapshots] == [
        datetime(2014, 9, 1, 10, 20, 30, tzinfo=UTC),
        datetime(2014, 8, 13, 10, 20, 30, 100000, tzinfo=UTC),
        datetime(2014, 8, 13, 10, 20, 30, tzinfo=UTC),
    ]
    assert [(s.tags, s.paths) for s in snapshots] == [
        ((), ()),
        (("foo", "bar"), ()),
        (("foo",), ("p",)),
    ]
    assert [p.kind for p in policies] == ["empty", "rules", "tags-only", "rules"]
    assert policies[1].counts == {"daily": 3, "monthly": -1}
    assert policies[2].tag_lists == (("foo",), ("bar", "baz"))
    assert policies[3].windows == {
        "within": parse_duration("1y1m1d"),
        "within_daily": parse_duration("2h"),
    }
    assert to_policy(policies[1]) == Policy(daily=3, monthly="unlimited")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("{Daily: 3, Monthly: -1}", "{Daily: 3, KeepAll: true}", "unknown field KeepAll"),
        ("{Daily: 3, Monthly: -1}", "{Daily: -2}", "not a count"),
        ("{Daily: 3, Monthly: -1}", "{Daily: 3, Daily: 4}", "given twice"),
        ('ParseDurationOrPanic("2h")', 'ParseDuration("2h")', "not ParseDurationOrPanic"),
        ('ParseDurationOrPanic("2h")', 'ParseDurationOrPanic("2x")', "not of restic's form"),
        ('ParseDurationOrPanic("2h")', 'ParseDurationOrPanic("2h3h")', "repeats a unit"),
        ('"2014-09-01 10:20:30"', '"2014-09-01T10:20:30"', "is not 'YYYY-MM-DD"),
        ("{Time: parseTimeUTC", '{Host: "h", Time: parseTimeUTC', "expected Time, Tags, Paths"),
        ("// a comment", "/* a comment */", "block comment"),
        ('fmt.Sprintf("policy_keep_snapshots_%d", i)', 'fmt.Sprintf("p_%d", i+1)', "no longer"),
        ("for i, p := range tests {", "for _, p := range tests {", "no longer"),
        ("[]restic.TagList{", "[]restic.TagLists{", "not a \\[\\]TagList"),
    ],
)
def test_reader_refuses_unknown_shapes(old: str, new: str, message: str) -> None:
    """A change in the Go test's shape raises FixtureFormatError naming it, never a partial read."""
    assert old in _GO
    with pytest.raises(FixtureFormatError, match=message):
        parse_test_file(_GO.replace(old, new, 1))


_SNAPSHOT = '{"time": "2014-08-13T10:20:30.1Z", "tree": null, "paths": null, "tags": ["foo"]}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"keep": [' + _SNAPSHOT + "]}", "1 kept snapshots and 0 reasons"),
        ('{"keep": [], "extra": 1}', "is not"),
        ('{"keep": [{"time": "2014-08-13 10:20:30", "tree": null}]}', "not RFC 3339"),
        ('{"keep": [{"time": "2014-08-13T10:20:30Z", "hostname": "h"}]}', "unknown keys"),
        (
            '{"keep": ['
            + _SNAPSHOT
            + '], "reasons": [{"snapshot": '
            + _SNAPSHOT
            + ', "matches": ["daily snapshot"], "counters": {"dayly": 1}}]}',
            "counters",
        ),
        ("not json", "not JSON"),
    ],
)
def test_golden_reader_refuses_unknown_shapes(text: str, message: str) -> None:
    """A golden file of another shape raises FixtureFormatError."""
    with pytest.raises(FixtureFormatError, match=message):
        parse_golden(text, "policy_keep_snapshots_0")


def test_golden_reader_reads_keep_reasons_and_counters() -> None:
    """A golden file gives each kept snapshot's time, tags, paths, matches and counters."""
    text = (
        '{"keep": ['
        + _SNAPSHOT
        + '], "reasons": [{"snapshot": '
        + _SNAPSHOT
        + ', "matches": ["oldest daily within 7d"], "counters": {"daily": 2}}]}'
    )
    golden = parse_golden(text, "policy_keep_snapshots_0")
    moment = datetime(2014, 8, 13, 10, 20, 30, 100000, tzinfo=UTC)
    assert golden.keep == ((moment, ("foo",), ()),)
    assert golden.reasons[0].matches == ("oldest daily within 7d",)
    assert golden.reasons[0].counters == {"daily": 2}
    assert parse_golden('{"keep": null}', "policy_keep_snapshots_0").keep == ()
