"""Raw feed bytes -> rows (CONTRACT section 2): what is a feed, what is quarantined, what is a malformed row."""

from __future__ import annotations

import polars as pl
import pytest

from dealer_assets.dms.domain import feed_text, parsing
from dealer_assets.dms.domain.parsing import LINE_NUMBER, FeedUnreadable, parse_feed
from dealer_assets.dms.settings import GENERIC_HEADERS, GENERIC_LAYOUT, Layout, parse_settings

H = b"DealerID,VIN,StockNo,SystemCode\n"


def rows_of(parsed) -> list[tuple]:
    return parsed.rows.rows()


def malformed_of(parsed) -> list[tuple]:
    return parsed.malformed.select("line_number", "raw_vin", "fields", "expected_fields").rows()


def inline_layout(yaml_layout: str) -> Layout:
    text = f"""
sources:
  dms:
    layout: {yaml_layout}
    track_stock_no_and_client: {{mode: never}}
    auto_close: {{mode: never}}
"""
    return parse_settings(text, "<test>").sources["dms"].file_layout


@pytest.mark.parametrize("body", [b"", b"\n", b"  \r\n\n"])
def test_empty_file_is_a_feed_with_no_rows(body: bytes) -> None:
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert parsed.rows.height == 0 and parsed.malformed.height == 0
    assert parsed.header == GENERIC_HEADERS
    assert LINE_NUMBER in parsed.rows.columns


@pytest.mark.parametrize("body", [H, H.rstrip(b"\n"), H.replace(b"\n", b"\r\n"), b"\xef\xbb\xbf" + H])
def test_header_only_file_is_a_feed_with_no_rows(body: bytes) -> None:
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert parsed.rows.height == 0 and parsed.malformed.height == 0
    assert parsed.header == ("DealerID", "VIN", "StockNo", "SystemCode")


def test_wrong_delimiter_is_missing_required_column() -> None:
    body = b"DealerID;VIN;StockNo;SystemCode\nD1;1HGCM82633A004352;S1;U\n"
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(body, GENERIC_LAYOUT)
    assert err.value.reason == "missing_required_column"


def test_missing_required_column() -> None:
    body = b"DealerID,StockNo,SystemCode\nD1,S1,U\n"
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(body, GENERIC_LAYOUT)
    assert err.value.reason == "missing_required_column"
    assert "'VIN'" in err.value.detail and "DealerID" not in err.value.detail.split(";")[0]


def test_optional_columns_may_be_absent() -> None:
    parsed = parse_feed(b"VIN,SystemCode,DealerID\nV1,U,D1\n", GENERIC_LAYOUT)
    assert parsed.header == ("VIN", "SystemCode", "DealerID")
    assert rows_of(parsed) == [("V1", "U", "D1", 2)]


def test_non_utf8_is_undecodable_but_fine_as_latin1() -> None:
    body = "DealerID,VIN,StockNo,SystemCode,Make\nD1,1HGCM82633A004352,S1,U,Citroën\n".encode("latin-1")
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(body, GENERIC_LAYOUT)
    assert err.value.reason == "undecodable"

    latin = inline_layout(
        "{encoding: latin-1, columns: {dealer_id: DealerID, vin: VIN, system_code: SystemCode, make: Make}}"
    )
    parsed = parse_feed(body, latin)
    assert rows_of(parsed) == [("D1", "1HGCM82633A004352", "S1", "U", "Citroën", 2)]


def test_bom_is_dropped_from_the_first_header() -> None:
    parsed = parse_feed(b"\xef\xbb\xbf" + H + b"D1,V1,S1,U\n", GENERIC_LAYOUT)
    assert parsed.header[0] == "DealerID"
    assert rows_of(parsed) == [("D1", "V1", "S1", "U", 2)]


def test_crlf_line_endings() -> None:
    body = b"DealerID,VIN,StockNo,SystemCode\r\nD1,V1,S1,U\r\nD2,V2,,U\r\n"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert parsed.header == ("DealerID", "VIN", "StockNo", "SystemCode")
    assert rows_of(parsed) == [("D1", "V1", "S1", "U", 2), ("D2", "V2", None, "U", 3)]
    assert parsed.malformed.height == 0


def test_quoted_newline_keeps_the_row_and_later_line_numbers() -> None:
    body = H + b'D1,V1,"S\n1",U\nD2,V2,"a, ""b""",U\nD3,V3,S3,U\n'
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert rows_of(parsed) == [
        ("D1", "V1", "S\n1", "U", 2),
        ("D2", "V2", 'a, "b"', "U", 4),
        ("D3", "V3", "S3", "U", 5),
    ]
    assert parsed.malformed.height == 0


def test_quoted_crlf_newline() -> None:
    body = b'DealerID,VIN,StockNo,SystemCode\r\nD1,V1,"S\r\n1",U\r\nD2,V2,S2,U\r\n'
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert [r[-1] for r in rows_of(parsed)] == [2, 4]
    assert rows_of(parsed)[1][:4] == ("D2", "V2", "S2", "U")


def test_too_many_and_too_few_fields_are_malformed_rows() -> None:
    body = H + b"D1,V1,S1,U\nD2,V2,S2,U,extra\nD3,V3,S3,U\nD4,V4\nD5,V5,S5,U"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert rows_of(parsed) == [
        ("D1", "V1", "S1", "U", 2),
        ("D3", "V3", "S3", "U", 4),
        ("D5", "V5", "S5", "U", 6),
    ]
    assert malformed_of(parsed) == [(3, "V2", 5, 4), (5, "V4", 2, 4)]


def test_malformed_row_after_a_quoted_newline_has_its_physical_line_number() -> None:
    body = H + b'D1,V1,"two\nlines",U\nD2,V2,S2\nD3,V3,S3,U\n'
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert malformed_of(parsed) == [(4, "V2", 3, 4)]
    assert [r[-1] for r in rows_of(parsed)] == [2, 5]


def test_many_extra_fields_in_a_later_row() -> None:
    body = H + b"D1,V1,S1,U\nD2,V2,S2,U,a,b,c,d,e\nD3,V3,S3,U\n"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert [r[0] for r in rows_of(parsed)] == ["D1", "D3"]
    assert malformed_of(parsed) == [(3, "V2", 9, 4)]


def test_first_data_row_with_two_extra_fields_is_a_malformed_row() -> None:
    body = H + b"D1,V1,S1,U,a,b\nD2,V2,S2,U\n"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert rows_of(parsed) == [("D2", "V2", "S2", "U", 3)]
    assert malformed_of(parsed) == [(2, "V1", 6, 4)]


def test_first_data_row_with_one_extra_field_is_a_malformed_row() -> None:
    body = H + b"D1,V1,S1,U,a\nD2,V2,S2,U\n"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert rows_of(parsed) == [("D2", "V2", "S2", "U", 3)]
    assert malformed_of(parsed) == [(2, "V1", 5, 4)]


def test_field_counts_of_an_unquoted_file_count_empty_fields_and_crs() -> None:
    """Without quoting, field counts come from record and field lengths: empty, trailing and CR-ended fields
    must count exactly as delimiters do."""
    body = H + b"D1,V1,S1,U,\r\nD2,V2,,\r\nD3,,,,,,\nD4,V4,S4,U\r\n,,\n,,,\nD7,V7,S7,U\r"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert rows_of(parsed) == [
        ("D2", "V2", None, None, 3),
        ("D4", "V4", "S4", "U", 5),
        (None, None, None, None, 7),
        ("D7", "V7", "S7", "U", 8),
    ]
    assert malformed_of(parsed) == [(2, "V1", 5, 4), (4, None, 7, 4), (6, None, 3, 4)]


@pytest.mark.parametrize("quoted", [False, True])
def test_a_few_odd_rows_among_many_are_counted_byte_by_byte(quoted: bool) -> None:
    """Only malformed or quoted records are counted delimiter by delimiter (line by line without quoting, byte
    by byte with it); the others take their counts from their lengths. Line numbers, fields and rows are what
    the exact count gives."""
    good = [b"D%d,V%d,S%d,U\n" % (n, n, n) for n in range(100)]
    odd = {
        10: b"D10,V10,S10,U,extra\n",
        40: b"D40,V40\n",
        70: b'D70,V70,"S,70\nsecond line",U\n' if quoted else b"D70,V70,S70,U\n",
        90: b'D90,V90,"S90,"",",U,more\n' if quoted else b"D90,V90,,U,more\n",
    }
    body = H + b"".join(odd.get(n, line) for n, line in enumerate(good))
    parsed = parse_feed(body, GENERIC_LAYOUT)
    late = 1 if quoted else 0
    assert malformed_of(parsed) == [(12, "V10", 5, 4), (42, "V40", 2, 4), (92 + late, "V90", 5, 4)]
    kept = {r[0]: r for r in rows_of(parsed)}
    assert len(kept) == 97 and kept["D99"][-1] == 101 + late
    assert kept["D70"][2] == ("S,70\nsecond line" if quoted else "S70")


@pytest.mark.parametrize("separators", ["\x1f", "\x1f\x1e\x1d\x1c"])
def test_a_file_holding_the_line_separators_is_read_all_the_same(separators: str) -> None:
    """The separator bytes polars reads whole lines with are only borrowed when the file lacks one of them."""
    stock = separators.encode()
    body = H + b"D1,V1,S1" + stock + b",U\nD2,V2\nD3,V3,S3,U,\r\n\nD5,V5,S5,U"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert rows_of(parsed) == [("D1", "V1", "S1" + separators, "U", 2), ("D5", "V5", "S5", "U", 6)]
    assert malformed_of(parsed) == [(3, "V2", 2, 4), (4, "V3", 5, 4)]


def test_counts_from_lengths_are_confirmed_by_the_files_delimiters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the reader ever keep a byte the whole-line read drops (as a CR), a row one field long would look
    whole by its lengths; the file's own total of delimiters disagrees, and every line is counted instead."""
    read_fields = parsing._read_fields

    def keeping_a_cr(*args, **kwargs):
        frame = read_fields(*args, **kwargs)
        return frame.with_columns(pl.col("f3").str.replace(r"^U$", "U\r"))

    monkeypatch.setattr(parsing, "_read_fields", keeping_a_cr)
    parsed = parse_feed(H + b"D1,V1,S1,U,\nD2,V2,S2,U\n", GENERIC_LAYOUT)
    assert malformed_of(parsed) == [(2, "V1", 5, 4)]
    assert [r[0] for r in rows_of(parsed)] == ["D2"]


def test_a_reader_that_loses_a_line_is_caught_on_either_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole-line read and the field read must agree on the number of lines; when they do not, the general
    path takes over, and it quarantines the file rather than number the rows wrongly."""
    read_fields = parsing._read_fields
    monkeypatch.setattr(parsing, "_read_fields", lambda *a, **k: read_fields(*a, **k).head(-1))
    with pytest.raises(FeedUnreadable) as caught:
        parse_feed(H + b"D1,V1,S1,U\nD2,V2,S2,U\nD3,V3,S3,U\n", GENERIC_LAYOUT)
    assert caught.value.reason == "unparseable"
    assert caught.value.detail == "found 3 records but the CSV reader saw 2"


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
@pytest.mark.parametrize("final_newline", [True, False])
def test_a_file_proven_whole_by_its_totals_parses_as_counted_line_by_line(
    monkeypatch: pytest.MonkeyPatch, ending: bytes, final_newline: bool
) -> None:
    """The usual export (every line whole, the last column filled) is proven whole from the file's totals
    alone, and what that gives is what counting every line gives."""
    lines = [b"D%d,V%d,%s,U" % (n, n, b"S%d" % n if n % 3 else b"") for n in range(300)]
    body = H.replace(b"\n", ending) + ending.join(lines) + (ending if final_newline else b"")
    proofs = []
    all_whole = parsing._all_whole
    monkeypatch.setattr(parsing, "_all_whole", lambda *a: proofs.append(all_whole(*a)) or proofs[-1])
    proven = parse_feed(body, GENERIC_LAYOUT)
    monkeypatch.setattr(parsing, "_all_whole", lambda *a: False)
    counted = parse_feed(body, GENERIC_LAYOUT)
    assert proofs == [True]
    assert rows_of(proven) == rows_of(counted) and len(rows_of(proven)) == 300
    assert rows_of(proven)[-1] == ("D299", "V299", "S299", "U", 301)
    assert proven.malformed.height == counted.malformed.height == 0


@pytest.mark.parametrize(
    ("body", "malformed", "kept"),
    [
        (H + b"D1,V1,S1,U,\nD2,V2,S2\nD3,V3,S3,U\n", [(2, "V1", 5, 4), (3, "V2", 3, 4)], ["D3"]),
        (H + b"D1,V1,S1,U,x\nD2,V2,S2,U\n", [(2, "V1", 5, 4)], ["D2"]),
        (H + b"D1,V1,S1,U\n\nD3,V3,S3,U\n", [], ["D1", "D3"]),
        (H + b"D1,V1,S1,\nD2,V2,S2,U,,\nD3,V3\n", [(3, "V2", 6, 4), (4, "V3", 2, 4)], ["D1"]),
    ],
)
def test_totals_that_do_not_prove_every_line_whole_send_the_file_to_the_line_count(
    body: bytes, malformed: list, kept: list
) -> None:
    """A long line with an empty extra field and a short one keep the delimiter total of whole lines; the
    short one's empty last column is what gives them away. A non-empty extra field, a blank line or an empty
    last column each send the file to the line-by-line count, which finds what is malformed."""
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert malformed_of(parsed) == malformed
    assert [r[0] for r in rows_of(parsed)] == kept


def test_blank_lines_are_skipped_but_counted() -> None:
    body = H + b"D1,V1,S1,U\n\nD2,V2,S2,U\r\n\r\nD3,V3,S3,U\n"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert [(r[0], r[-1]) for r in rows_of(parsed)] == [("D1", 2), ("D2", 4), ("D3", 6)]
    assert parsed.malformed.height == 0


def test_extra_columns_are_kept() -> None:
    body = b"DealerID,VIN,Color,StockNo,SystemCode,Lot\nD1,V1,red,S1,U,7\n"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert parsed.header == ("DealerID", "VIN", "Color", "StockNo", "SystemCode", "Lot")
    assert parsed.rows.columns == ["DealerID", "VIN", "Color", "StockNo", "SystemCode", "Lot", LINE_NUMBER]
    assert rows_of(parsed) == [("D1", "V1", "red", "S1", "U", "7", 2)]


def test_all_values_are_kept_as_text() -> None:
    body = b"DealerID,VIN,SystemCode,Year,Mileage\n0100,V1,007,2022,00012\n"
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert rows_of(parsed) == [("0100", "V1", "007", "2022", "00012", 2)]


def test_pipe_delimited_latin1_inline_layout_with_constant_system_code() -> None:
    layout = inline_layout(
        "{delimiter: '|', encoding: latin-1, quote: \"'\", columns: {dealer_id: Dealer, "
        "vin: Vehicle VIN, stock_no: Stock, make: Marke, system_code: {constant: U}}}"
    )
    body = (
        "Dealer|Vehicle VIN|Stock|Marke\n"
        "D1|1hgcm82633a004352|S1|Citroën\n"
        "D2|'11111111111111111'|'S|2'|Müller\n"
        "D3|x\n"
    ).encode("latin-1")
    assert b"\xeb" in body  # really latin-1, not UTF-8
    parsed = parse_feed(body, layout)
    assert parsed.header == ("Dealer", "Vehicle VIN", "Stock", "Marke")
    assert rows_of(parsed) == [
        ("D1", "1hgcm82633a004352", "S1", "Citroën", 2),
        ("D2", "11111111111111111", "S|2", "Müller", 3),
    ]
    assert malformed_of(parsed) == [(4, "x", 2, 4)]


def test_required_headers_of_inline_layout_exclude_constants() -> None:
    layout = inline_layout(
        "{delimiter: '|', columns: {dealer_id: Dealer, vin: VIN, system_code: {constant: U}}}"
    )
    assert parse_feed(b"Dealer|VIN\nD1|V1\n", layout).rows.height == 1
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(b"Dealer|Stock\nD1|S1\n", layout)
    assert err.value.reason == "missing_required_column"


def test_unbalanced_quote_is_unparseable() -> None:
    body = H + b'D1,"V1,S1,U\nD2,V2,S2,U\n'
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(body, GENERIC_LAYOUT)
    assert err.value.reason == "unparseable"
    assert "line 2" in err.value.detail


def test_invalid_utf8_in_the_middle_reports_its_byte() -> None:
    body = H + b"D1,V1,S\xff1,U\n"
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(body, GENERIC_LAYOUT)
    assert err.value.reason == "undecodable"
    assert f"byte {len(H) + 7}" in err.value.detail
    # With a BOM the byte offset still counts from the start of the file.
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(b"\xef\xbb\xbf" + body, GENERIC_LAYOUT)
    assert f"byte {len(H) + 10}" in err.value.detail


def test_duplicate_header_names_are_made_unique() -> None:
    parsed = parse_feed(b"DealerID,VIN,SystemCode,Note,Note\nD1,V1,U,a,b\n", GENERIC_LAYOUT)
    assert parsed.header == ("DealerID", "VIN", "SystemCode", "Note", "Note_2")
    assert rows_of(parsed) == [("D1", "V1", "U", "a", "b", 2)]


@pytest.mark.parametrize(
    "stock", [[b'20" WHL', b"S2", b'17" RIM'], [b'20" WHL', b"S2", b"S3"], [b'S1"', b"S2", b"S3"]]
)
def test_quotes_inside_unquoted_fields_are_text(stock: list[bytes]) -> None:
    """A DMS that never quotes may still write inch marks; with no field opening a quote, nothing is quoted."""
    body = H + b"".join(b"D%d,V%d,%s,U\n" % (i, i, s) for i, s in enumerate(stock, start=1))
    parsed = parse_feed(body, GENERIC_LAYOUT)
    assert parsed.malformed.height == 0
    assert parsed.rows.get_column("StockNo").to_list() == [s.decode() for s in stock]
    assert parsed.rows.get_column(LINE_NUMBER).to_list() == [2, 3, 4]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (H + b'D1,"V1",S1,U\nD2,V2,20" WHL,U\nD3,V3,17" RIM,U\nD4,V4,S4,U\n', "the CSV reader failed"),
        (H + b'D1,"V1",S1,U\nD2,V2,20" WHL,U\n', "never closed"),
        (H + b'D1,"V1" X,S1,U\nD2,V2,S2,U\n', "the CSV reader failed"),
        (b'"DealerID"x,VIN,StockNo,SystemCode\nD1,V1,S1,U\n', "the header cannot be read"),
    ],
)
def test_stray_quotes_in_a_quoted_file_quarantine_it_as_unparseable(body: bytes, detail: str) -> None:
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(body, GENERIC_LAYOUT)
    assert err.value.reason == "unparseable"
    assert detail in err.value.detail


def test_a_blank_first_line_is_a_missing_header() -> None:
    with pytest.raises(FeedUnreadable) as err:
        parse_feed(b"\n" + H + b"D1,V1,S1,U\n", GENERIC_LAYOUT)
    assert err.value.reason == "missing_required_column"
    assert "found []" in err.value.detail


LATIN1 = inline_layout(
    "{encoding: latin-1, columns: {dealer_id: DealerID, vin: VIN, system_code: SystemCode}}"
)


@pytest.mark.parametrize(
    ("body", "layout", "mapped"),
    [
        (H + b"D1,V1,S1,U\nD2,V2\n\nD3,V3,S3,U,X\nD4,V4,,U", GENERIC_LAYOUT, True),
        (H + b"D1,V1,S1,U\r\nD2,V2,S2,U\r\n", GENERIC_LAYOUT, True),
        (H + b'D1,"V1\r\nV1",S1,U\r\nD2,"V""2",S2,U\r\n', GENERIC_LAYOUT, True),
        (H + b"D1,V1,S1\x1f\x1e\x1d\x1c,U\r\n\x00D2,V2,S2,U\n", GENERIC_LAYOUT, True),
        (H.rstrip(b"\n"), GENERIC_LAYOUT, True),
        (H + b'D1,"V1,S1,U\n', GENERIC_LAYOUT, True),
        (b"DealerID,Stock\nD1,S1\n", GENERIC_LAYOUT, True),
        (b"\xef\xbb\xbf" + H + b"D1,V1,S1,U\n", GENERIC_LAYOUT, False),
        (H + "D1,V1,S1,U,Citroën\n".encode(), GENERIC_LAYOUT, False),
        (H + b"D1,V1,S1,U\xe9\n", GENERIC_LAYOUT, False),
        (H + "D1,V1,S1,Citroën\n".encode("latin-1"), LATIN1, False),
        (b"", GENERIC_LAYOUT, False),
        (b" \r\n\n\t", GENERIC_LAYOUT, False),
    ],
)
def test_a_file_parses_from_its_path_as_from_its_bytes(
    tmp_path, body: bytes, layout: Layout, mapped: bool
) -> None:
    """From its path an ASCII file is mapped, not read into memory; any other is read. Either way the
    result is the one its bytes give: the same rows, or the same quarantine reason and detail. The path is
    a name, never a pattern."""
    path = tmp_path / "feed[1]*.csv"
    path.write_bytes(body)
    assert (feed_text.mapped(path, layout.encoding) is not None) is mapped

    def parse(feed):
        try:
            parsed = parse_feed(feed, layout)
        except FeedUnreadable as exc:
            return exc.reason, exc.detail
        return parsed.header, rows_of(parsed), malformed_of(parsed)

    assert parse(path) == parse(body)
