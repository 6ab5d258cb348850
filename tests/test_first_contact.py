"""What a new user sees first: usage, help, version, hints (issue 14)."""

from __future__ import annotations

import pytest

from nbnumba import __version__
from nbnumba.cli.main import main
from nbnumba.cli.usage import FLAGS, did_you_mean, usage_text

RUN = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-detpixels", "8",
       "-nonoise", "-nopgm", "-noprogress", "-floatfile", "f.bin", "-intfile", "i.img"]


def test_no_arguments_prints_usage_and_exits_2(capsys):
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: nanobragg-nb")
    assert "-distance mm" in captured.err


@pytest.mark.parametrize("flag", ["-h", "-help", "--help"])
def test_help_lists_every_flag_with_units_and_default(flag, capsys):
    assert main([flag]) == 0
    out = capsys.readouterr().out
    assert out == usage_text("nanobragg-nb")
    for group, flags in FLAGS:
        assert f"{group}:" in out
        for name, _, _ in flags:
            assert name in out
    assert "-distance mm" in out and "[default: 100 mm]" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"nanobragg-nb (nbnumba) {__version__}\n"


def test_missing_crystal_error_is_its_own_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["-detpixels", "8", "-noprogress"]) == 2
    captured = capsys.readouterr()
    # no C banner glued to the error line: stdout, if any, ends its lines
    assert captured.out == "" or captured.out.endswith("\n")
    assert captured.err.strip().splitlines()[-1].endswith("nanobragg-nb -h lists every flag")


@pytest.mark.parametrize("typo, flag", [("-distnace", "-distance"), ("-lamda", "-lambda"),
                                        ("-detpixel_x", "-detpixels_x"), ("-zzzz", None)])
def test_did_you_mean(typo, flag):
    assert did_you_mean(typo) == flag


def test_mistyped_flag_warning_names_the_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*RUN, "-distnace", "150"]) == 0
    err = capsys.readouterr().err
    assert ("warning: -distnace matches no nanoBragg.c option; nanoBragg.c ignores it "
            "(did you mean -distance?)") in err


@pytest.mark.parametrize("extra, text", [
    (["-printout"], "-printout is ignored"),
    (["-printout_pixel", "3", "4"], "use -trace_pixel 4 3"),
    (["-stolout", "s.txt"], "-stolout s.txt is ignored, as in nanoBragg.c"),
])
def test_parsed_but_unused_flags_are_warned(extra, text, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*RUN, *extra]) == 0
    assert text in capsys.readouterr().err


def test_no_bar_and_no_carriage_returns_in_a_log(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    run = [a for a in RUN if a != "-noprogress"]
    assert main([*run, "-progress"]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "row/s" not in err and "%|" not in err


def test_compile_notice_only_when_the_first_call_is_slow(capsys):
    import time

    from nbnumba.progress import NOTICE, compile_with_notice

    assert compile_with_notice(lambda: None, notice_after_s=0.5) is False
    assert capsys.readouterr().err == ""
    assert compile_with_notice(lambda: time.sleep(0.3), notice_after_s=0.05) is True
    assert capsys.readouterr().err == NOTICE
