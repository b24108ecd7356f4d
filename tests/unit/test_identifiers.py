"""Case ids and 查询码: their shape, and that every character of the alphabet is drawn about equally often."""
import collections
import re

from services.intake.domain import identifiers


def test_a_query_code_is_three_groups_of_four_from_the_readable_alphabet():
    for _ in range(200):
        code = identifiers.new_query_code()
        assert re.fullmatch(r"[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}-[A-HJKMNP-Z2-9]{4}", code), code


def test_a_case_id_names_the_division_and_day_and_ends_in_eight_random_characters():
    case_id = identifiers.new_case_id("510104")
    assert re.fullmatch(r"LF510104\d{8}[A-HJKMNP-Z2-9]{8}", case_id), case_id


def test_every_character_and_position_is_drawn_about_equally():
    codes = [identifiers.new_query_code().replace("-", "") for _ in range(31 * 200)]
    overall = collections.Counter("".join(codes))
    assert set(overall) == set(identifiers._ALPHABET)
    expected = len(codes) * 12 / 31  # 2,400 a character
    assert all(abs(n - expected) < 0.15 * expected for n in overall.values()), overall
    for position in (0, 11):  # the first and the last character too (a bias would show at the ends)
        at = collections.Counter(c[position] for c in codes)
        assert all(abs(n - 200) < 80 for n in at.values()) and len(at) == 31, (position, at)
    assert len(set(codes)) == len(codes)
