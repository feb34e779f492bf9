"""``transcribe --stream``'s printer: each piece of final text through the text pipeline as it
comes (as typing while speaking does), the model's own text kept as raw_text; --raw leaves it."""
from __future__ import annotations

import io
import json

from ctrlspeak.commands.stream import Printer
from ctrlspeak.daemon.live_text import Partial
from ctrlspeak.text.context import Context, TextSettings

CTX = Context(TextSettings(words=(("cube control", "kubectl"),), spoken_punctuation=True,
                           auto_capitalize="auto"))


def feed(printer: Printer, finals: list[str], text: str) -> dict:
    for seq, final in enumerate(finals):
        printer.partial("a.wav", Partial("s", seq, final, "tentative words"))
    result = {"file": "a.wav", "text": text}
    printer.final(result)
    return result


def test_plain_output_is_each_piece_through_the_pipeline_in_order():
    out = io.StringIO()
    result = feed(Printer(False, out, CTX), ["run cube control period", "run cube control period then stop"],
                  "run cube control period then stop new line done")
    assert out.getvalue() == "Run kubectl. Then stop\nDone.\n"  # no space before the break
    assert result["text"] == "Run kubectl. Then stop\nDone."
    assert result["raw_text"] == "run cube control period then stop new line done"


def test_json_partials_stay_the_models_and_the_final_is_what_the_pipeline_made():
    out = io.StringIO()
    feed(Printer(True, out, CTX), ["cube control comma"], "cube control comma yes")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["event"] == "partial" and lines[0]["final"] == "cube control comma"
    assert lines[-1]["event"] == "final" and lines[-1]["text"] == "Kubectl, yes."
    assert lines[-1]["raw_text"] == "cube control comma yes"


def test_raw_prints_the_models_text_and_the_defaults_close_only_the_end():
    out = io.StringIO()
    result = feed(Printer(False, out, None), ["one two", "one two three"], "one two three four")
    assert out.getvalue() == "one two three four\n" and result == {"file": "a.wav", "text": "one two three four"}
    out = io.StringIO()
    result = feed(Printer(False, out, Context()), ["one two", "one two three"], "one two three four")
    assert out.getvalue() == "One two three four.\n" and result["text"] == "One two three four."


def test_a_last_piece_that_adds_nothing_still_closes_the_text():
    out = io.StringIO()
    result = feed(Printer(False, out, Context()), ["one two"], "one two")
    assert out.getvalue() == "One two.\n" and result["text"] == "One two." and result["raw_text"] == "one two"


def test_a_second_file_starts_fresh():
    out = io.StringIO()
    printer = Printer(False, out, CTX)
    feed(printer, ["first period"], "first period")
    feed(printer, ["second"], "second")
    assert out.getvalue() == "First.\nSecond.\n"
