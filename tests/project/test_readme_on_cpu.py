"""The README is a newcomer's guide: its first sections give the commands, the layout and how
to extend it, it carries no run history, and every file or link it names exists."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def test_first_screen_of_sections_has_the_commands_layout_and_how_to_add_a_loss():
    sections = re.findall(r"^## (.+)$", README, re.M)
    first = sections[:5]
    assert "The two commands" in first and "Layout" in first and "How to extend it" in first, sections
    extend = README[README.index("## How to extend it"):README.index("## Results")]
    assert "**A loss**" in extend and "wmsd_ray/algorithms/losses.py" in extend
    assert "make run" in README[:README.index("## How it fits together")]


def test_no_run_history_in_the_readme():
    assert not re.search(r"`full\d+`", README), "run histories belong in docs/EXPERIMENTS.md"


def test_every_named_file_and_link_exists():
    named = set(re.findall(r"\]\(([^)#]+)\)", README))  # markdown links
    named |= set(re.findall(r"`((?:wmsd_ray|actors|learners|configs|cluster|tests|benchmarks|docs)/[\w./-]+)", README))
    named |= set(re.findall(r"python (benchmarks/\w+\.py)", README))
    missing = sorted(p for p in named if not p.startswith("http") and not (ROOT / p.rstrip("/")).exists())
    assert not missing and len(named) > 20, missing
