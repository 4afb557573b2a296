from layerkit.report.table import format_table, mb


def test_numbers_right_aligned_text_left() -> None:
    text = format_table(
        ["name", "MB", "delta"], [["a", "1.0", "+42.3"], ["long name", "123.4", "-3.1"]]
    )
    assert text.splitlines() == [
        "name          MB  delta",
        "---------  -----  -----",
        "a            1.0  +42.3",
        "long name  123.4   -3.1",
    ]


def test_mb_keeps_small_sizes_visible() -> None:
    assert (mb(None), mb(0), mb(6_927), mb(96_900_000)) == ("-", "0.0", "0.007", "96.9")
