"""Self-test of the applicability table and of how "not applicable" is reported."""

from __future__ import annotations

from dataclasses import replace

from sonobridge.hil.applicability import RULES, BoardFacts, not_applicable
from sonobridge.hil.report import NOT_APPLICABLE, REQUIREMENTS, HilReport

V1 = BoardFacts(dialect="sonobridge-v1", v1_frames=True, status=True, ping=True, reset=True,
                clock=True, envelope=False, simulated=True)
SHELL = BoardFacts(dialect="pic0rick-shell", v1_frames=False, status=False, ping=False,
                   reset=False, clock=False, envelope=False, simulated=False)


def inapplicable(facts: BoardFacts) -> set[str]:
    """The requirement ids the table rules out for ``facts``."""
    return {rid for rid in REQUIREMENTS if not_applicable(rid, facts) is not None}


def test_the_table_names_only_known_requirements() -> None:
    """A typo in the table would silently make a requirement apply everywhere."""
    assert set(RULES) <= set(REQUIREMENTS)


def test_a_full_v1_board_is_held_to_everything() -> None:
    """The simulator the suite starts: every requirement applies."""
    assert inapplicable(V1) == set()


def test_v1_boards_lose_only_what_they_lack() -> None:
    """Real hardware has no ground truth; a board without RESET is not reset, but still asked."""
    assert inapplicable(replace(V1, simulated=False)) == {"HIL-SIM-1"}
    no_reset = inapplicable(replace(V1, reset=False))
    assert no_reset == {"HIL-REC-1"}
    assert "no RESET capability" in (not_applicable("HIL-REC-1", replace(V1, reset=False)) or "")


def test_a_board_without_v1_is_still_held_to_streaming_and_data() -> None:
    """What a stock-firmware board can do stays applicable, with reasons for the rest."""
    out = inapplicable(SHELL)
    for rid in ("HIL-HS-1", "HIL-HS-2", "HIL-CMD-3", "HIL-CMD-4", "HIL-CFG-3", "HIL-STR-1",
                "HIL-STR-3", "HIL-REC-2", "HIL-DATA-1", "HIL-DATA-2", "HIL-DATA-3",
                "HIL-DATA-4", "HIL-DATA-5"):
        assert rid not in out, rid
    assert {"HIL-CMD-5", "HIL-CMD-6", "HIL-FRM-1", "HIL-CFG-1", "HIL-LAT-1", "HIL-STR-4",
            "HIL-REC-1", "HIL-SOAK-1"} <= out
    why = not_applicable("HIL-CMD-5", SHELL) or ""
    assert "pic0rick-shell" in why and "no STATUS command" in why
    envelope = inapplicable(replace(SHELL, dialect="open-echo", envelope=True)) - out
    assert envelope == {"HIL-DATA-1", "HIL-DATA-2", "HIL-DATA-4"}


def test_not_applicable_never_hides_a_failure() -> None:
    """One failed test fails its requirement, whatever its other tests were."""
    rep = HilReport()
    rep.add_result("a::cfg[x]", "HIL-CFG-1", NOT_APPLICABLE, "no v1 frames", 0.0)
    rep.add_result("a::cfg[y]", "HIL-CFG-1", "failed", "NAK missing", 0.0)
    rep.add_result("a::cmd5", "HIL-CMD-5", NOT_APPLICABLE, "no STATUS command", 0.0)
    rep.add_result("a::cmd5", "HIL-CMD-5", "error", "teardown broke", 0.0)  # same test
    rep.add_result("a::rec2", "HIL-REC-2", "skipped", "needs --unplug", 0.0)
    rep.add_result("a::soak", "HIL-SOAK-1", NOT_APPLICABLE, "no PING", 0.0)
    by_id = {r["id"]: r for r in rep.requirement_results()}
    assert by_id["HIL-CFG-1"]["outcome"] == "fail"
    assert by_id["HIL-CMD-5"]["outcome"] == "fail"
    assert by_id["HIL-REC-2"]["outcome"] == "skip"
    assert by_id["HIL-SOAK-1"] == {**by_id["HIL-SOAK-1"], "outcome": "n/a", "message": "no PING"}
    assert rep.failed
    data = rep.to_json()
    assert data["result"] == "fail"
    assert data["requirement_counts"]["n/a"] == 1
    md = rep.to_markdown()
    assert "| HIL-SOAK-1 | n/a (not applicable) |" in md
    assert "1 not applicable to this board" in md


def test_a_skip_among_not_applicable_tests_stays_a_skip() -> None:
    """A requirement is n/a only when all its tests are; a real skip keeps its own reason."""
    rep = HilReport()
    rep.add_result("a::x", "HIL-DATA-5", NOT_APPLICABLE, "envelope", 0.0)
    rep.add_result("a::y", "HIL-DATA-5", "skipped", "no frame", 0.0)
    (r,) = [r for r in rep.requirement_results() if r["id"] == "HIL-DATA-5"]
    assert (r["outcome"], r["message"]) == ("skip", "no frame")
