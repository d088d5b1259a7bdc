"""Bounded input: every number finite and in range, every file readable and small, every error one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from farm.errors import SpecError
from farm.plan import expand
from farm.spec import (
    DEFAULT_MAX_CELLS,
    check_sweep_name,
    count_cells,
    load_sweep,
    parse_sweep,
)
from farm.stacks.manifest import load_manifest
from tests.conftest import ROOT

BASE = """name: bounded
stack: shop
matrix:
  architecture: [monolith, microservices]
  cache: [none, local]
  users: [5, 10]
load: {spawn_rate: 10, duration: 15s, warmup: 5s}
"""


def refusal(text: str, **kwargs: object) -> str:
    """The one-line message with which `parse_sweep` refuses `text` (fails the test if it accepts it)."""
    with pytest.raises(SpecError) as info:
        parse_sweep(text, source="bad.yaml", base=ROOT, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("bad.yaml: ")
    assert len(message.splitlines()) == 1, message
    return message


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("duration: 15s", "duration: .inf", "load.duration: a duration must be a finite number"),
    ("duration: 15s", "duration: .nan", "load.duration: a duration must be a finite number"),
    ("duration: 15s", "duration: 1.0e+400", "load.duration: a duration must be a finite number"),
    ("duration: 15s", "duration: -3", "load.duration: a duration cannot be negative"),
    ("duration: 15s", "duration: 0", "load.duration: must be at least 1s"),
    ("duration: 15s", "duration: 25h", "load.duration: must be at most 24h00m (86400s)"),
    ("warmup: 5s", "warmup: .inf", "load.warmup: a duration must be a finite number"),
    ("warmup: 5s", "warmup: 100000", "load.warmup: must be at most 24h00m"),
    ("spawn_rate: 10", "spawn_rate: .inf", "load.spawn_rate: Input should be a finite number"),
    ("spawn_rate: 10", "spawn_rate: .nan", "load.spawn_rate: Input should be a finite number"),
    ("spawn_rate: 10", "spawn_rate: 0", "load.spawn_rate: Input should be greater than 0"),
    ("spawn_rate: 10", "spawn_rate: -1", "load.spawn_rate: Input should be greater than 0"),
    ("spawn_rate: 10", "spawn_rate: 1000000", "load.spawn_rate: Input should be less than or equal to 10000"),
    ("spawn_rate: 10", "spawn_rate: " + "9" * 400, "load.spawn_rate:"),
    ("users: [5, 10]", "users: [5, 100001]", "'users' values must be whole numbers from 1 to 100,000, not 100001"),
    ("users: [5, 10]", "users: [5, 0]", "'users' values must be whole numbers from 1 to 100,000, not 0"),
    ("users: [5, 10]", "users: [5, 10]\n  instances: [257]", "'instances' values must be whole numbers from 1 to 256"),
    ("users: [5, 10]", "users: [5, [10]]", "matrix.users[1]: must be a single value"),
    ("cache: [none, local]", "cache: [none, {x: 1}]", "matrix.cache[1]: must be a single value"),
    ("cache: [none, local]", "cache: [none, 2001-01-01]", "matrix.cache[1]: must be text, a number"),
    ("cache: [none, local]", "cache: [none, .inf]", "matrix.cache[1]: must be a finite number"),
    ("name: bounded", "name: bounded\ndescription: \"a\\x1b[31mred\"", "description: must not contain control"),
    ("stack: shop", "stack: \"sh\\nop\"", "stack: must not contain control characters"),
    ("stack: shop", "stack: \"sh\\u202eop\"", "stack: must not contain control characters"),
    ("name: bounded", "name: bounded\ntargets: [\"lab1\\u2028\"]", "targets[0]: must not contain control"),
    ("stack: shop", "stack: " + "s" * 5000, "stack: must be at most 1024 characters"),
    ("stack: shop", "stack: " + "s" * 1000, "stack: cannot look up 'sss"),
    ("name: bounded", "name: bounded\nrepetitions: 1000", "repetitions: Input should be less than or equal to 100"),
    ("name: bounded", "name: bounded\nslo: {p95_ms: .inf}", "slo.p95_ms: Input should be a finite number"),
])
def test_out_of_range_values_are_refused_with_the_bound(old: str, new: str, expected: str) -> None:
    # Given the base sweep with one value out of range; When it is parsed; Then one line names the field and bound
    assert old in BASE
    assert expected in refusal(BASE.replace(old, new))


def test_the_base_sweep_is_valid() -> None:
    assert parse_sweep(BASE, source="ok.yaml", base=ROOT).spec.load.duration == 15.0


def test_a_description_may_hold_lines_tabs_and_emoji_sequences() -> None:
    text = BASE + 'description: "first line\\n\\tsecond: \U0001F469\u200d\U0001F4BB caf\u00e9"\n'
    assert "\u200d" in parse_sweep(text, source="ok.yaml", base=ROOT).spec.description


def test_a_ten_to_the_ninth_cell_matrix_is_refused_at_once() -> None:
    # Given a matrix of 1,000 users × 10 instance counts × 1,000 delays × 100 repetitions
    levels = ", ".join(str(i) for i in range(1, 1001))
    text = f"name: huge\nstack: sleepy\nmatrix:\n  users: [{levels}]\n  instances: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" \
           f"  delay_ms: [{levels}]\nrepetitions: 100\n"
    # When it is parsed
    started = time.thread_time()  # CPU time: what expanding 10^9 cells would spend (minutes), and load does not
    message = refusal(text)
    # Then it is refused by arithmetic, quickly, with the way out
    assert time.thread_time() - started < 1.0
    assert ("matrix: 1000000000 cells is more than the limit of 100000; narrow the matrix or pass "
            "--max-cells 1000000000") in message


def test_the_cell_limit_can_be_raised_or_lowered() -> None:
    assert DEFAULT_MAX_CELLS == 100_000
    assert "8 cells is more than the limit of 7" in refusal(BASE, max_cells=7)
    assert count_cells(parse_sweep(BASE, source="s", base=ROOT, max_cells=8).spec) == 8


@pytest.mark.parametrize("exclude", [
    "[]",
    "[{architecture: microservices, cache: none}]",
    "[{architecture: microservices}, {cache: none}]",
    "[{architecture: microservices}, {cache: none}, {architecture: microservices, cache: none}, {users: 5}]",
    "[{cache: none}, {cache: none, users: 10}]",
])
def test_the_arithmetic_count_equals_the_planned_cells(exclude: str) -> None:
    # Given overlapping exclude rules and two repetitions
    text = BASE + f"exclude: {exclude}\nrepetitions: 2\n"
    loaded = parse_sweep(text, source="s", base=ROOT)
    # Then the count without enumerating equals the number of cells the plan has
    assert count_cells(loaded.spec) == len(expand(loaded.spec, loaded.manifest).cells)


def test_sweep_names_follow_one_rule() -> None:
    assert check_sweep_name("quick-start_2.0") == "quick-start_2.0"
    for bad in ["[/bold]x", "", "-x", "a b", "x" * 81, "a\nb", "é"]:
        with pytest.raises(SpecError, match=r"sweep: .* is not a valid sweep name; use letters, digits"):
            check_sweep_name(bad, "sweep")


@pytest.mark.parametrize(("content", "expected"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not a UTF-8 text file (byte 0x89 at offset 0)"),
    ("name: caf\u00e9\n".encode("latin-1"), "not a UTF-8 text file (byte 0xe9 at offset 9)"),
    (b"name: a\x00b\n", "character 8: not valid YAML (unacceptable character #x0000"),
    (b"name: x\n" + b"#" * (1 << 20), "larger than 1024 KiB"),
    (b"", "a sweep file must be a mapping"),
    (b"- just\n- a list\n", "a sweep file must be a mapping"),
    (b"name: [unclosed\n", "line 2: not valid YAML"),
    (b"users: " + b"9" * 5000 + b"\n", "a value cannot be read"),
    (b"when: 2001-02-31\n", "a value cannot be read"),
    (b"x: !!python/object/apply:os.system [echo hi]\n", "could not determine a constructor"),
])
def test_unreadable_files_give_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    # Given a file that is not a sweep at all
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    # When it is loaded; Then one line says what is wrong with it
    with pytest.raises(SpecError) as info:
        load_sweep(path)
    assert expected in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    for deep in ("matrix: " + "[" * 5000 + "]" * 5000, "matrix:\n" + "".join("  " * i + "- \n" for i in range(1, 500)),
                 "matrix: " + "{a: " * 3000 + "1" + "}" * 3000):
        assert "nested too deeply (more than 64 levels)" in refusal("name: deep\nstack: shop\n" + deep)


def test_an_alias_bomb_is_refused_before_it_expands() -> None:
    # Given the "billion laughs": nine levels of ten aliases each
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    started = time.thread_time()  # CPU time, which the machine's load does not stretch
    message = refusal("\n".join(lines) + "\nname: bomb\nstack: shop\nmatrix: {users: *a9}\n")
    assert "more than 200,000 values once aliases are expanded" in message
    assert time.thread_time() - started < 1.0


def test_a_recursive_alias_is_refused() -> None:
    assert "recursive aliases are not allowed" in refusal("name: r\nstack: shop\nmatrix: &m {users: [1], x: *m}\n")


def test_a_few_aliases_are_fine() -> None:
    text = "name: ok\nstack: shop\nmatrix: {users: &u [1, 2], instances: [1]}\nexclude: [{users: 1}]\n"
    assert parse_sweep(text, source="s", base=ROOT).spec.matrix["users"] == [1, 2]


def test_control_characters_are_escaped_in_the_message() -> None:
    # Given an unknown key holding a newline, an ANSI escape and a line separator
    message = refusal(BASE + '"evil\\nkey\\x1b[2J\\u2028": 1\n')
    # Then the message names it on one line, escaped
    assert "evil\\nkey\\x1b[2J\\u2028: unknown key" in message


def test_a_huge_value_is_clipped_in_the_message() -> None:
    message = refusal(BASE.replace("cache: [none, local]", "cache: [none, " + "x" * 100_000 + "]"))
    assert "is not allowed for stack 'shop'" in message and len(message) < 400


TEXT_STACK = """name: textual
locustfile: locust.py
parameters:
  greeting: {type: str, default: hello}
  route: {type: str, default: /api, pattern: '/[a-z/]*'}
  words: {type: str, default: hi, pattern: '.*'}
  workers: {type: int, default: 4, min: 1, max: 64}
  ratio: {type: float, default: 0.5, min: 0, max: 1}
local:
  entry: app
  services:
    - name: app
      command: [echo, "{{ params.greeting }}", "{{ params.route }}"]
"""


def textual_stack(tmp_path: Path, manifest: str = TEXT_STACK) -> Path:
    folder = tmp_path / "textual"
    folder.mkdir(exist_ok=True)
    (folder / "stack.yaml").write_text(manifest)
    (folder / "locust.py").write_text("")
    return folder


@pytest.mark.parametrize(("values", "expected"), [
    ('greeting: ["hi\\n}\\nlocation /admin {"]', "text values must not contain control characters"),
    ('greeting: ["tab\\there"]', "text values must not contain control characters"),
    ('greeting: ["nul\\0"]', "text values must not contain control characters"),
    ('greeting: ["esc\\x1b[31m"]', "text values must not contain control characters"),
    ('greeting: ["sep\\u2028", "rtl\\u202e"]', "text values must not contain control characters"),
    ('route: ["/ok", "/Bad"]', "matrix.route[1]: '/Bad' is not allowed for stack 'textual'; the value must match "
                               "the pattern '/[a-z/]*'"),
    ('route: ["/ok;", "/b"]', "the value must match the pattern"),
    ("greeting: [3]", "allowed: text matching the pattern"),
    ('words: ["tab\\there"]', "text values must not contain control characters"),
    # an open text value without a pattern of its own: no spaces, quotes, shell or config metacharacters
    ('greeting: ["a b"]', "matrix.greeting[0]: 'a b' is not allowed for stack 'textual'; the value must match the "
                          "pattern '(?:[A-Za-z0-9_./]"),
    ('greeting: ["$(id)"]', "the value must match the pattern"),
    ('greeting: ["x;y"]', "the value must match the pattern"),
    ('greeting: ["{{ 7*7 }}"]', "the value must match the pattern"),
    ('greeting: ["--rm"]', "the value must match the pattern"),
    ('greeting: ["x\\"y"]', "the value must match the pattern"),
    ("workers: [0]", "matrix.workers[0]: 0 is not allowed for stack 'textual'; allowed: a whole number from 1 to 64"),
    ("workers: [65]", "allowed: a whole number from 1 to 64"),
    ("ratio: [1.5]", "allowed: a finite number from 0 to 1"),
])
def test_open_text_parameters_refuse_control_characters_and_follow_their_pattern(
        tmp_path: Path, values: str, expected: str) -> None:
    # Given a stack with an open text parameter and one with a pattern
    textual_stack(tmp_path)
    text = f"name: t\nstack: ./textual\nmatrix:\n  users: [1]\n  {values}\n"
    # When a sweep sets them; Then a bad value is refused naming the rule
    with pytest.raises(SpecError) as info:
        parse_sweep(text, source="t.yaml", base=tmp_path)
    assert expected in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_good_open_text_values_pass(tmp_path: Path) -> None:
    textual_stack(tmp_path)
    text = ('name: t\nstack: ./textual\nmatrix: {users: [1], words: ["hé llo", "$x^2$"], route: [/a/b],\n'
            '  greeting: [host-1.lab, "a=b,c:d/e@f+g", ""], workers: [1, 64], ratio: [0, 1]}\n')
    matrix = parse_sweep(text, source="t.yaml", base=tmp_path).spec.matrix
    assert matrix["route"] == ["/a/b"] and matrix["workers"] == [1, 64]


@pytest.mark.parametrize(("parameter", "expected"), [
    ("{type: str, default: hi, min: 1}", "'min' and 'max' apply only to an open number"),
    ("{values: [1, 2], default: 1, max: 3}", "'min' and 'max' apply only to an open number"),
    ("{type: int, default: 4, min: 5, max: 1}", "min 5 is larger than max 1"),
    ("{type: int, default: 0, min: 1}", "default 0 is not allowed: allowed: a whole number from 1 to ∞"),
    ("{type: str, default: 'a b'}", "default 'a b' is not allowed: the value must match the pattern"),
])
def test_a_manifest_with_bounds_that_cannot_hold_is_refused(tmp_path: Path, parameter: str, expected: str) -> None:
    folder = textual_stack(tmp_path, TEXT_STACK.replace("{type: str, default: hello}", parameter))
    with pytest.raises(SpecError) as info:
        load_manifest(folder)
    assert expected in str(info.value), str(info.value)


@pytest.mark.parametrize(("change", "expected"), [
    (("default: /api, pattern", "default: /API, pattern"), "default '/API' is not allowed: the value must match"),
    (("default: hello}", 'default: "a\\nb"}'), "default 'a\\nb' is not allowed: text values must not contain"),
    (("pattern: '/[a-z/]*'", "pattern: '(['"), "is not a valid regular expression"),
    (("greeting: {type: str, default: hello}", "greeting: {type: int, default: 1, pattern: x}"),
     "'pattern' applies only to an open text parameter"),
])
def test_manifest_defaults_and_patterns_are_checked(tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in TEXT_STACK
    folder = textual_stack(tmp_path, TEXT_STACK.replace(old, new))
    with pytest.raises(SpecError) as info:
        load_manifest(folder)
    assert expected in str(info.value)


def test_the_built_in_stacks_still_load() -> None:
    for manifest in (ROOT / "stacks").glob("*/stack.yaml"):
        assert load_manifest(manifest.parent).name


@pytest.mark.parametrize("count", ["inf", "nan", "-1", "1e400"])
def test_an_imported_csv_with_an_infinite_count_is_a_readable_problem(tmp_path: Path, count: str) -> None:
    from farm.importer import scan

    # Given a classic stats CSV whose request count is not a count
    (tmp_path / "output_u_5_i_1_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Average Response Time,95%\n"
        f",Aggregated,{count},0,12.5,30\n")
    # When the folder is scanned; Then the file is listed as a problem, not raised
    result = scan(tmp_path, {})
    assert result.cells == []
    [(name, reason)] = result.problems
    assert name == "output_u_5_i_1_stats.csv" and "is not a count" in reason


@pytest.mark.parametrize(("content", "expected"), [
    (TEXT_STACK.replace("hello", "caf\u00e9").encode("latin-1"), "cannot read the stack manifest: 'utf-8' codec"),
    (b"name: [unclosed\n", "line 2: not valid YAML"),
    (b"name: " + b"[" * 1000 + b"]" * 1000, "nested too deeply"),
])
def test_an_unreadable_manifest_gives_one_line_through_the_sweep(
        tmp_path: Path, content: bytes, expected: str) -> None:
    # Given a user's stack folder whose manifest cannot be read
    folder = textual_stack(tmp_path)
    (folder / "stack.yaml").write_bytes(content)
    # When a sweep names it; Then one line names the manifest and what is wrong
    with pytest.raises(SpecError) as info:
        parse_sweep("name: t\nstack: ./textual\nmatrix: {users: [1]}\n", source="t.yaml", base=tmp_path)
    message = str(info.value)
    assert message.startswith("t.yaml: stack: ") and "stack.yaml" in message and expected in message
    assert len(message.splitlines()) == 1
