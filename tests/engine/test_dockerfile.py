"""The Dockerfile parser and BuildKit's word expansion.

The expansion vectors are BuildKit's own (frontend/dockerfile/shell: envVarTest, wordsTest and
lex_test.go), carried over as data. The golden cases live in folders beside this module:
parser/<case>/Dockerfile with expected.json, and parser/negative/<case>/Dockerfile with
expected-error.txt (BuildKit's parser/testfiles layout). UPDATE_GOLDEN=1 rewrites the expected
files from the parser's output: read every changed one before committing it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from builds.engine.dockerfile import (
    Dockerfile,
    Heredoc,
    Instruction,
    expand,
    expand_words,
    parse,
    parse_arg,
    parse_key_values,
)
from builds.engine.errors import DockerfileError

GOLDEN = Path(__file__).parent / "parser"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def only(text: str) -> Instruction:
    """The one instruction of the single stage of `FROM scratch` + text."""
    (ins,) = parse("FROM scratch\n" + text).stages[0].instructions
    return ins


def parse_error(text: str) -> DockerfileError:
    with pytest.raises(DockerfileError) as caught:
        parse(text)
    return caught.value


# --- golden cases -----------------------------------------------------------------------------------


def dump(df: Dockerfile) -> dict[str, Any]:
    return {
        "escape": df.escape,
        "meta_args": [dump_instruction(ins) for ins in df.meta_args],
        "stages": [
            {
                "index": stage.index, "name": stage.name, "base": stage.base, "platform": stage.platform,
                "line": stage.line, "original": stage.original,
                "instructions": [dump_instruction(ins) for ins in stage.instructions],
            }
            for stage in df.stages
        ],
    }


def dump_instruction(ins: Instruction) -> dict[str, Any]:
    out: dict[str, Any] = {
        "keyword": ins.keyword, "original": ins.original, "line": ins.line, "end_line": ins.end_line,
        "flags": {name: list(values) for name, values in ins.flags.items()},
        "args": list(ins.args), "json_form": ins.json_form,
    }
    if ins.heredocs:
        out["heredocs"] = [
            {"name": doc.name, "content": doc.content, "expand": doc.expand, "chomp": doc.chomp, "fd": doc.fd}
            for doc in ins.heredocs
        ]
    return out


def cases(root: Path) -> list[Path]:
    return sorted(path for path in root.iterdir() if (path / "Dockerfile").is_file())


@pytest.mark.parametrize("case", cases(GOLDEN), ids=lambda path: path.name)
def test_golden_case_parses_to_its_expected_structure(case: Path) -> None:
    got = dump(parse((case / "Dockerfile").read_text(encoding="utf-8")))
    expected_file = case / "expected.json"
    if UPDATE:
        expected_file.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    assert got == json.loads(expected_file.read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", cases(GOLDEN / "negative"), ids=lambda path: path.name)
def test_negative_case_fails_with_its_expected_message(case: Path) -> None:
    with pytest.raises(DockerfileError) as caught:
        parse((case / "Dockerfile").read_text(encoding="utf-8"))
    expected_file = case / "expected-error.txt"
    if UPDATE:
        expected_file.write_text(str(caught.value) + "\n", encoding="utf-8")
    assert caught.value.line is not None
    assert str(caught.value) == expected_file.read_text(encoding="utf-8").rstrip("\n")


def test_every_golden_folder_has_its_expected_file() -> None:
    for case in cases(GOLDEN):
        assert (case / "expected.json").is_file(), case
    for case in cases(GOLDEN / "negative"):
        assert (case / "expected-error.txt").is_file(), case


# --- parse ------------------------------------------------------------------------------------------


def test_original_joins_continuation_lines_and_drops_inner_comments() -> None:
    ins = only("RUN apt-get update \\\n    # the comment line goes\n    && apt-get install -y curl\n")
    assert ins.original == "RUN apt-get update     && apt-get install -y curl"
    assert (ins.line, ins.end_line) == (2, 4)
    assert ins.args == ("apt-get update     && apt-get install -y curl",)


def test_original_is_the_instruction_line_without_heredoc_bodies() -> None:
    ins = only("RUN python3 <<EOF\nprint(1)\nEOF\n")
    assert ins.original == "RUN python3 <<EOF"
    assert (ins.line, ins.end_line) == (2, 4)
    assert ins.with_heredocs() == "python3 <<EOF\nprint(1)\nEOF"


def test_meta_args_come_before_the_first_from_and_stages_split_on_from() -> None:
    df = parse("ARG BASE=alpine\nARG V\nFROM $BASE AS Build\nRUN a\nFROM build\nARG V\nRUN b\n")
    assert [ins.original for ins in df.meta_args] == ["ARG BASE=alpine", "ARG V"]
    assert [(s.index, s.name, s.base, s.line) for s in df.stages] == [
        (0, "build", "$BASE", 3), (1, None, "build", 5),
    ]
    assert [ins.keyword for ins in df.stages[1].instructions] == ["ARG", "RUN"]
    assert df.stages[0].label == "build" and df.stages[1].label == "1"


def test_platform_flag_and_from_instruction_are_kept_on_the_stage() -> None:
    stage = parse("FROM --platform=$BUILDPLATFORM golang:1 AS build\n").stages[0]
    assert stage.platform == "$BUILDPLATFORM"
    assert stage.original == "FROM --platform=$BUILDPLATFORM golang:1 AS build"
    assert stage.from_instruction is not None and stage.from_instruction.args == ("golang:1", "AS", "build")


def test_stage_is_found_by_name_ignoring_case_or_by_index() -> None:
    df = parse("FROM a AS One\nFROM b AS two\nFROM c\n")
    assert df.stage("ONE") is df.stages[0]
    assert df.stage("two") is df.stages[1]
    assert df.stage("2") is df.stages[2]
    assert df.stage("3") is None
    assert df.stage("three") is None
    assert df.stage("-1") is None


def test_flags_keep_every_value_of_a_repeatable_flag() -> None:
    ins = only("RUN --mount=type=cache,target=/a --mount=type=tmpfs,target=/b --network=none true\n")
    assert ins.flags == {"mount": ("type=cache,target=/a", "type=tmpfs,target=/b"), "network": ("none",)}
    assert ins.flag("mount") == "type=tmpfs,target=/b"
    assert ins.flag("security", "sandbox") == "sandbox"


def test_boolean_flags_may_be_bare_or_explicit() -> None:
    ins = only("COPY --link --parents=FALSE a b\n")
    assert ins.flags == {"link": ("true",), "parents": ("false",)}


def test_quoted_flag_values_lose_their_quotes() -> None:
    assert only('COPY --chown="app user" a b\n').flags == {"chown": ("app user",)}


def test_json_form_args_are_the_decoded_list() -> None:
    ins = only('CMD ["echo", "a b", "\\u00e9"]\n')
    assert ins.json_form and ins.args == ("echo", "a b", "é")


def test_invalid_json_falls_back_to_shell_form() -> None:
    ins = only("CMD ['echo', 'a']\n")
    assert not ins.json_form and ins.args == ("['echo', 'a']",)


def test_bare_run_cmd_and_entrypoint_are_accepted_as_buildkit_does() -> None:
    df = parse("FROM scratch\nRUN\nCMD\nENTRYPOINT []\n")
    assert [(ins.keyword, ins.args) for ins in df.stages[0].instructions] == [
        ("RUN", ()), ("CMD", ()), ("ENTRYPOINT", ()),
    ]


def test_keywords_are_upper_cased() -> None:
    assert only("run echo hi\n").keyword == "RUN"


def test_escape_directive_changes_the_continuation_character() -> None:
    df = parse("# escape=`\nFROM scratch\nRUN dir `\n  C:\\app\nWORKDIR C:\\app\\\n")
    assert df.escape == "`"
    run, workdir = df.stages[0].instructions
    assert run.args == ("dir   C:\\app",)
    assert workdir.args == ("C:\\app\\",)  # a backslash at the end is no continuation now


def test_directives_must_open_the_file() -> None:
    df = parse("FROM scratch\n# escape=`\nRUN a `\n")
    assert df.escape == "\\"
    assert df.stages[0].instructions[0].args == ("a `",)


def test_a_byte_order_mark_is_ignored() -> None:
    df = parse("\ufeff# escape=`\nFROM scratch\n")
    assert df.escape == "`" and df.stages[0].original == "FROM scratch"


def test_heredoc_delimiter_quoting_and_chomp_come_from_the_line() -> None:
    ins = only('COPY <<-"A" <<B 3<<C /d/\n\tx\n\tA\ny\nB\nz\nC\n')
    assert ins.heredocs == (
        Heredoc("A", "\tx\n", expand=False, chomp=True),
        Heredoc("B", "y\n", expand=True, chomp=False),
        Heredoc("C", "z\n", expand=True, chomp=False, fd=3),
    )


def test_a_partly_quoted_delimiter_turns_expansion_off() -> None:
    (doc,) = only("RUN <<E'O'F\n$HOME\nEOF\n").heredocs
    assert doc.name == "EOF" and not doc.expand


def test_chomped_heredoc_body_loses_leading_tabs() -> None:
    (doc,) = only("RUN <<-EOF\n\t\techo a\n\t  b\nEOF\n").heredocs
    assert doc.content == "\t\techo a\n\t  b\n"
    assert doc.body() == "echo a\n  b\n"


def test_json_form_has_no_heredocs() -> None:
    ins = only('RUN ["cat", "<<EOF"]\n')
    assert ins.heredocs == () and ins.args == ("cat", "<<EOF")


def test_onbuild_args_are_the_trigger_as_written() -> None:
    ins = only("ONBUILD COPY --from=build /a /b\n")
    assert ins.args == ("COPY --from=build /a /b",)
    assert ins.flags == {}


def test_onbuild_trigger_keeps_its_heredoc() -> None:
    ins = only("ONBUILD RUN <<EOF\necho hi\nEOF\n")
    assert ins.args == ("RUN <<EOF\necho hi\nEOF",)
    assert ins.heredocs == (Heredoc("EOF", "echo hi\n", expand=True, chomp=False),)


# --- parse errors -------------------------------------------------------------------------------------


def test_errors_name_the_file_and_line() -> None:
    with pytest.raises(DockerfileError) as caught:
        parse("FROM scratch\n\nFOO bar\n", filename="app/Dockerfile.dev")
    assert (caught.value.file, caught.value.line) == ("app/Dockerfile.dev", 3)
    assert caught.value.message == "unknown instruction: FOO (did you mean FROM?)"
    assert str(caught.value) == "app/Dockerfile.dev:3: unknown instruction: FOO (did you mean FROM?)"


def test_a_syntax_error_names_the_first_line_of_its_instruction() -> None:
    error = parse_error("FROM scratch\nRUN <<EOF\nx\nEOF\nENV a=1 \\\n  b\n")
    assert error.line == 5
    assert error.message == "Syntax error - can't find = in \"b\". Must be of the form: name=value"


def test_an_unterminated_heredoc_names_its_instruction() -> None:
    error = parse_error("FROM scratch\nRUN true\nRUN cat \\\n  <<EOF\nno end\n")
    assert (error.line, error.message) == (3, "unterminated heredoc")


def test_a_syntax_error_under_the_backtick_escape_names_its_line() -> None:
    error = parse_error('# escape=`\nFROM scratch\nRUN ["a", `\n  1]\n')
    assert error.line == 3


def test_no_instructions_at_all() -> None:
    assert str(parse_error("")) == "Dockerfile:1: file with no instructions"
    assert str(parse_error("# nothing\n\n")) == "Dockerfile:2: file with no instructions"


def test_a_nul_character_is_refused_rather_than_cut_off() -> None:
    error = parse_error("FROM scratch\nRUN a\x00b\n")
    assert error.line == 2


def test_text_that_is_not_utf8_is_refused_before_it_reaches_the_go_parser() -> None:
    # A lone surrogate (what JSON's "\\ud800" decodes to) crashes the parser's whole process.
    error = parse_error("FROM scratch\n\nRUN echo \ud800\n")
    assert error.line == 3 and "UTF-8" in error.message


def test_a_lone_continuation_at_the_end_is_an_unknown_instruction() -> None:
    assert str(parse_error("FROM scratch\n\\ ")) == "Dockerfile:2: unknown instruction: "


def test_a_too_long_line_names_its_line() -> None:
    error = parse_error("FROM scratch\nRUN " + "x" * 70_000 + "\n")
    assert error.line == 2 and "greater than max allowed size" in error.message


@pytest.mark.parametrize(("text", "message"), [
    ("FROM a\nADD --unpack a b\n", "unknown flag: --unpack"),
    ("FROM a\nEXPOSE --x 80\n", "unknown flag: --x"),
    ("FROM a\nHEALTHCHECK --retries=99999999999 CMD x\n",
     'strconv.ParseInt: parsing "99999999999": value out of range'),
    ("FROM a\nHEALTHCHECK --interval=-1s CMD x\n", 'Interval "interval" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --start-interval=.s CMD x\n", 'time: invalid duration ".s"'),
    ("FROM a\nUSER\n", "USER requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL\n", "STOPSIGNAL requires exactly one argument"),
    ("FROM a\nEXPOSE\n", "EXPOSE requires at least one argument"),
    ("FROM a\nLABEL\n", "LABEL requires at least one argument"),
    ("FROM a\nLABEL =x\n", "LABEL names can not be blank"),
    ("FROM a\nADD a\n", "ADD requires at least two arguments, but only one was provided. "
                        "Destination could not be determined"),
    ("FROM a\nADD a <<EOF\nx\nEOF\n", "ADD cannot accept a heredoc as a destination"),
    ("FROM a\nONBUILD MAINTAINER me\n", "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nRUN --security=none true\n", 'security "none" is not valid'),
    ("FROM a AS b c\n", "FROM requires either one or three arguments"),
    ("FROM a AS b_\nFROM a AS b.c-d\nFROM a AS B?\n", 'invalid name for build stage: "B?", '
                                                       "name can't start with a number or contain symbols"),
])
def test_buildkit_rejects(text: str, message: str) -> None:
    assert parse_error(text).message == message


def test_healthcheck_durations_follow_go() -> None:
    ins = only("HEALTHCHECK --interval=1m30s --timeout=1.5s --start-period=0 --retries=+3 CMD true\n")
    assert ins.flag("interval") == "1m30s" and ins.flag("retries") == "+3"


def test_flags_buildkit_never_reads_are_let_through() -> None:
    df = parse("FROM a\nARG --x=1 V\nSTOPSIGNAL --y 9\nHEALTHCHECK --z NONE\n")
    assert [ins.flags for ins in df.stages[0].instructions] == [
        {"x": ("1",)}, {"y": ("true",)}, {"z": ("true",)},
    ]


# --- expand: BuildKit's envVarTest, with its environment ------------------------------------------

VECTOR_ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}

# source | expected ("error" when expansion must fail); rows are stripped, as BuildKit's test does.
ENV_VAR_VECTORS = r"""
hello                    |     hello
he'll'o                  |     hello
he'llo                   |     error
he\'llo                  |     he'llo
he\\'llo                 |     error
abc\tdef                 |     abctdef
"abc\tdef"               |     abc\tdef
"abc\\tdef"              |     abc\tdef
'abc\tdef'               |     abc\tdef
hello\                   |     hello
hello\\                  |     hello\
"hello                   |     error
"hello\"                 |     error
"hel'lo"                 |     hel'lo
'hello                   |     error
'hello\'                 |     hello\
'hello\there'            |     hello\there
'hello\\there'           |     hello\\there
"''"                     |     ''
$.                       |     $.
he$1x                    |     hex
he$.x                    |     he$.x
he$pwd.                  |     he.
he$PWD                   |     he/home
he\$PWD                  |     he$PWD
he\\$PWD                 |     he\/home
"he\$PWD"                |     he$PWD
"he\\$PWD"               |     he\/home
\${}                     |     ${}
\${}aaa                  |     ${}aaa
he\${}                   |     he${}
he\${}xx                 |     he${}xx
${}                      |     error
${}aaa                   |     error
he${}                    |     error
he${}xx                  |     error
he${hi}                  |     he
he${hi}xx                |     hexx
he${PWD}                 |     he/home
he${.}                   |     error
he${XXX:-000}xx          |     he000xx
he${PWD:-000}xx          |     he/homexx
he${XXX:-$PWD}xx         |     he/homexx
he${XXX:-${PWD:-yyy}}xx  |     he/homexx
he${XXX:-${YYY:-yyy}}xx  |     heyyyxx
he${XXX:YYY}             |     error
he${XXX?}                |     error
he${XXX:?}               |     error
he${PWD?}                |     he/home
he${PWD:?}               |     he/home
he${NULL?}               |     he
he${NULL:?}              |     error
he${XXX:+${PWD}}xx       |     hexx
he${PWD:+${XXX}}xx       |     hexx
he${PWD:+${SHELL}}xx     |     hebashxx
he${XXX:+000}xx          |     hexx
he${PWD:+000}xx          |     he000xx
'he${XX}'                |     he${XX}
"he${PWD}"               |     he/home
"he'$PWD'"               |     he'/home'
"$PWD"                   |     /home
'$PWD'                   |     $PWD
'\$PWD'                  |     \$PWD
'"hello"'                |     "hello"
he\$PWD                  |     he$PWD
"he\$PWD"                |     he$PWD
'he\$PWD'                |     he\$PWD
he${PWD                  |     error
he${PWD:=000}xx          |     error
he${PWD:+${PWD}:}xx      |     he/home:xx
he${XXX:-\$PWD:}xx       |     he$PWD:xx
he${XXX:-\${PWD}z}xx     |     he${PWDz}xx
안녕하세요                 |     안녕하세요
안'녕'하세요               |     안녕하세요
안'녕하세요                |     error
안녕\'하세요               |     안녕'하세요
안\\'녕하세요              |     error
안녕\t하세요               |     안녕t하세요
"안녕\t하세요"             |     안녕\t하세요
'안녕\t하세요              |     error
안녕하세요\                |     안녕하세요
안녕하세요\\               |     안녕하세요\
"안녕'하세요"              |     안녕'하세요
'안녕하세요\'              |     안녕하세요\
안녕$1x                    |     안녕x
안녕$.x                    |     안녕$.x
안녕\\$PWD                 |     안녕\/home
안녕${XXX:-${PWD:-yyy}}xx  |     안녕/homexx
'안녕${XX}'                |     안녕${XX}
"안녕'$PWD'"               |     안녕'/home'
$KOREAN                    |     한국어
안녕$KOREAN                |     안녕한국어
${{aaa}                   |     error
${aaa}}                   |     }
${aaa                     |     error
${{aaa:-bbb}              |     error
${aaa:-bbb}}              |     bbb}
${aaa:-bbb                |     error
${aaa:-bbb}               |     bbb
${aaa:-${bbb:-ccc}}       |     ccc
${aaa:-bbb ${foo}         |     error
${aaa:-bbb {foo}          |     bbb {foo
${:}                      |     error
${:-bbb}                  |     error
${:+bbb}                  |     error
$1                        |
${1}                      |
${1:+bbb}                 |
${1:-bbb}                 |     bbb
$999aaa                   |     aaa
${999}aaa                 |     aaa
${999:+bbb}aaa            |     aaa
${999:-bbb}aaa            |     bbbaaa
$001                      |
${001:-bbb}aaa            |     bbbaaa
$@                        |
${@}                      |
${@:+bbb}                 |
${@:-bbb}                 |     bbb
$@@@                      |     @@
$@aaa                     |     aaa
${@:-bbb}aaa              |     bbbaaa
$*                        |
${*:-bbb}                 |     bbb
$#                        |
${#}                      |
${#:+bbb}                 |
${#:-bbb}                 |     bbb
$?                        |
${?:-bbb}                 |     bbb
$-                        |
${-:-bbb}                 |     bbb
$$                        |
${$:-bbb}                 |     bbb
$!                        |
${!:-bbb}                 |     bbb
$0                        |
${0}                      |
${0:+bbb}                 |
${0:-bbb}                 |     bbb
"""


def env_var_vectors() -> list[tuple[str, str]]:
    rows = []
    for row in ENV_VAR_VECTORS.strip().splitlines():
        source, expected = row.split("|")
        rows.append((source.strip(), expected.strip()))
    return rows


@pytest.mark.parametrize(("source", "expected"), env_var_vectors())
def test_expand_matches_buildkits_env_var_vectors(source: str, expected: str) -> None:
    if expected == "error":
        with pytest.raises(DockerfileError):
            expand(source, VECTOR_ENV)
    else:
        assert expand(source, VECTOR_ENV) == expected


# (word, env, expected or None for an error): BuildKit's TestProcessWithMatches cases.
SUBSTITUTIONS: list[tuple[str, dict[str, str], str | None]] = [
    ("x ${UNUSED}", {}, "x "),
    ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx  ccc"),
    ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", {"FOO": "xxx", "BAR": ""}, "xxx bbb ccc"),
    ("${FOO:-}", {"FOO": "xxx"}, "xxx"),
    ("${FOO:-}", {}, ""),
    ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa bbb "),
    ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", {"FOO": "xxx", "BAR": ""}, "aaa  "),
    ("${FOO?aaa}", {"FOO": "xxx"}, "xxx"),
    ("${BAR?bbb}", {"BAR": ""}, ""),
    ("${BAZ?ccc}", {}, None),
    ("${FOO:?aaa}", {"FOO": "xxx"}, "xxx"),
    ("${BAR:?bbb}", {"BAR": ""}, None),
    ("${BAZ:?}", {}, None),
    ("${FOO=aaa}", {"FOO": "xxx"}, None),
    ("${FOO=:aaa}", {"FOO": "xxx"}, None),
    ("${FOO=}", {}, None),
    ("${FOO#()[]{\\}^$.\\*\\?|\\\\}", {"FOO": "()[]{}^$.*?|\\x"}, "x"),
    ("${FOO%%\\**}", {"FOO": "xx**"}, "xx"),
    ("${FOO#*x*y}", {"FOO": "xxyy"}, "y"),
    ("${FOO#*}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": "x"}, "xyy"),
    ("${FOO#$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO#}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO##*x}", {"FOO": "xxyy"}, "yy"),
    ("${FOO##}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO#?\\?}", {"FOO": "???y"}, "?y"),
    ("${ABC:-.}${FOO%x}${ABC:-.}", {"FOO": "xxyy"}, ".xxyy."),
    ("${FOO%%\\**\\*}", {"FOO": "a***yy*"}, "a"),
    ("${FOO%}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO%%$BAR}", {"FOO": "xxyy", "BAR": ""}, "xxyy"),
    ("${FOO:#}", {}, None),
    ("${FOO:##}", {}, None),
    ("${FOO:%}", {}, None),
    ("${FOO:%%}", {}, None),
    ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", {"FOO": "/foo*/*/*.txt", "NEEDLE": "\\*/"},
     "/foo.*/*.txt - /foo..*.txt"),
    ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", {"FOO": "/tmp/tmp/bar.txt", "NEEDLE": "/tmp"},
     "/tmp/bar.txt - /bar.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
     {"FOO": "/a/foo/b/c.txt", "NEEDLE": "/?/", "REPLACEMENT": "/"}, "/foo/b/c.txt - /foo/c.txt"),
    ("${FOO/$NEEDLE/$REPLACEMENT}", {"FOO": "http://google.de", "NEEDLE": "http://", "REPLACEMENT": "https://"},
     "https://google.de"),
    ("${FOO//\\//\\/}", {"FOO": "/tmp/foo.txt"}, "\\/tmp\\/foo.txt"),
    ("${FOO/$BAR/ww}", {"FOO": "xxyy", "BAR": ""}, "wwxxyy"),
    ("${FOO//ww}", {"FOO": "xxyy"}, None),
    ("${FOO//}", {"FOO": "xxyy"}, None),
    ("${FOO///}", {"FOO": "xxyy"}, "xxyy"),
    ("${FOO///}", {}, ""),
    ("something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
     {"VERSION": "v1.2.3", "TARGETOS": "linux", "TARGETARCH": "arm", "TARGETVARIANT": "v7"},
     "something-v1.2.3.linux-arm-v7.tar.gz"),
    ("something-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}",
     {"TARGETARCH": "arm64", "TARGETVARIANT": ""}, "something-arm64"),
]


@pytest.mark.parametrize(("word", "env", "expected"), SUBSTITUTIONS)
def test_expand_matches_buildkits_substitution_cases(
    word: str, env: dict[str, str], expected: str | None
) -> None:
    if expected is None:
        with pytest.raises(DockerfileError):
            expand(word, env)
    else:
        assert expand(word, env) == expected


def test_a_required_variable_fails_with_its_message_expanded() -> None:
    assert expand("${VAR:?message here$ARG}", {"VAR": "plain", "ARG": "x"}) == "plain"
    assert expand("${VAR?message here$ARG}", {"VAR": "", "ARG": "x"}) == ""
    with pytest.raises(DockerfileError) as caught:
        expand("${VAR:?message here$ARG}", {"VAR": "", "ARG": "x"})
    assert caught.value.message == 'failed to process "${VAR:?message here$ARG}": VAR: message herex'
    with pytest.raises(DockerfileError, match="VAR: is not allowed to be unset"):
        expand("${VAR?}", {})


def test_replace_all_takes_no_empty_match_right_after_a_match_as_go_does() -> None:
    assert expand("${A//*/x}", {"A": "abc"}) == "x"
    assert expand("${A//b*/x}", {"A": "abc"}) == "ax"


def test_replace_all_expands_dollar_zero_in_the_replacement() -> None:
    # The replacement keeps its escapes, and Go's ReplaceAllString reads $0 as the match.
    assert expand("${A//b/<\\$0>}", {"A": "abc"}) == "a<\\b>c"
    assert expand("${A/b/<\\$0>}", {"A": "abc"}) == "a<\\$0>c"  # one replacement is literal


def test_a_wildcard_pattern_over_a_long_value_takes_linear_time_as_go_s_regexp_does() -> None:
    # A backtracking matcher takes minutes over this; RE2, as BuildKit's Go regexp, milliseconds.
    value = "a" * 100_000
    started = time.monotonic()
    assert expand("${A//*a*a*b/x}", {"A": value}) == value
    assert expand("${A#*a*a*b}", {"A": value}) == value
    assert time.monotonic() - started < 5


def test_patterns_match_whole_characters_of_text_that_is_not_ascii() -> None:
    assert expand("${A//?/x}", {"A": "héé"}) == "xxx"
    assert expand("${A//é/e}", {"A": "héé"}) == "hee"


def test_the_backtick_escape_escapes_and_the_backslash_is_plain() -> None:
    assert expand("C:\\dir\\$X", {"X": "y"}, escape="`") == "C:\\dir\\y"
    assert expand("`$X `\"", {"X": "y"}, escape="`") == '$X "'
    assert expand('"a`"b"', {}, escape="`") == 'a"b'


# --- expand_words: BuildKit's wordsTest ------------------------------------------------------------

WORDS_ENV = {"hi": "hi", "space": "abc  def", "leading": "  ab c", "trailing": "ab c   "}

WORDS: list[tuple[str, list[str] | None]] = [
    ("hello", ["hello"]),
    ("hello${hi}bye", ["hellohibye"]),
    ("hello${space}bye", ["helloabc", "defbye"]),
    ('hello"${space}"bye', ["helloabc  defbye"]),
    ('hello "${space}"bye', ["hello", "abc  defbye"]),
    ("hello${leading}def", ["hello", "ab", "cdef"]),
    ('hello"${leading}" def', ["hello  ab c", "def"]),
    ('hello"${leading}"', ["hello  ab c"]),
    ("hello${leading}", ["hello", "ab", "c"]),
    ("hello${trailing}", ["helloab", "c"]),
    ("hello${trailing}d", ["helloab", "c", "d"]),
    ('hello"${trailing}"d', ["helloab c   d"]),
    ('hel"lo${trailing}"', ["helloab c   "]),
    ('hello" there  "', ["hello there  "]),
    ("hello there     ", ["hello", "there"]),
    ("hello\\ there", ["hello there"]),
    ('hello" there', None),
    ('hello\\" there', ['hello"', "there"]),
    ('hello"\\\\there"', ["hello\\there"]),
    ('hello"\\there"', ["hello\\there"]),
    ("hello'\\\\there'", ["hello\\\\there"]),
    ("hello'\\there'", ["hello\\there"]),
    ("hello'$there'", ["hello$there"]),
]


@pytest.mark.parametrize(("text", "expected"), WORDS)
def test_expand_words_matches_buildkits_words_vectors(text: str, expected: list[str] | None) -> None:
    if expected is None:
        with pytest.raises(DockerfileError):
            expand_words(text, WORDS_ENV)
    else:
        assert expand_words(text, WORDS_ENV) == expected


def test_expand_words_keeps_text_before_a_substitution_in_its_word() -> None:
    # BuildKit since mid-2024 loses "ab" here (a shared buffer); earlier releases, and this, don't.
    assert expand_words("ab${X:-c}d e", {}) == ["abcd", "e"]


def test_empty_quotes_alone_make_no_word() -> None:
    assert expand_words('a "" b', {}) == ["a", "b"]
    assert expand_words("8080 ${PORTS}", {"PORTS": "80/tcp  443/udp"}) == ["8080", "80/tcp", "443/udp"]


# --- ENV, LABEL and ARG values ----------------------------------------------------------------------


def test_env_pairs_are_expanded_against_the_env_before_the_instruction() -> None:
    ins = only('ENV A=1 B=$A C="x  y" D=${NOPE:-d}\n')
    assert parse_key_values(ins, {"A": "0"}) == [("A", "1"), ("B", "0"), ("C", "x  y"), ("D", "d")]


def test_legacy_env_form_takes_the_rest_of_the_line() -> None:
    ins = only('ENV GREETING "hello"  big $WHO\n')
    assert parse_key_values(ins, {"WHO": "world"}) == [("GREETING", "hello  big world")]


def test_label_keys_lose_their_quotes_and_escapes() -> None:
    ins = only('LABEL "com.example.name"="my app" version=1\\ 0 \'$raw\'=x\n')
    assert parse_key_values(ins, {}) == [("com.example.name", "my app"), ("version", "1 0"), ("$raw", "x")]


def test_env_values_follow_the_escape_directive() -> None:
    df = parse("# escape=`\nFROM scratch\nENV P=C:\\tools\\`$HOME Q=$HOME\n")
    assert parse_key_values(df.stages[0].instructions[0], {"HOME": "h"}, escape=df.escape) == [
        ("P", "C:\\tools\\$HOME"), ("Q", "h"),
    ]


def test_arg_names_with_and_without_defaults() -> None:
    ins = only('ARG A B=2 C="x y" D=${B:-none} E=\n')
    assert parse_arg(ins, {"B": "b"}) == [("A", None), ("B", "2"), ("C", "x y"), ("D", "b"), ("E", "")]
