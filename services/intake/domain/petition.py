"""A petition as submitted at a desk (登记): the input schema and its rules. No framework but pydantic."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared import divisions, idnumber
from shared.categories import CATEGORIES

Channel = Literal["letter", "visit", "phone", "online", "fax", "email", "forwarded"]
CHANNEL_LABELS = {"letter": "来信", "visit": "来访", "phone": "电话", "online": "网上", "fax": "传真",
                  "email": "邮件", "forwarded": "转来"}
COLLECTIVE_MIN_PERSONS = 5   # 集体访: 5 or more persons
MAX_REPRESENTATIVES = 5      # … who choose at most 5 representatives
_PHONE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # C0 controls and DEL; tab and newlines are fine


def _no_control(v: str | None) -> str | None:
    """NUL and other control characters are valid JSON but no text (PostgreSQL refuses NUL outright)."""
    if v is not None and _CONTROL.search(v):
        raise ValueError("不能包含控制字符 (must not contain control characters such as NUL)")
    return v


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=50, description="姓名")
    id_number: str | None = Field(default=None, description="居民身份证号, 18 characters with GB 11643 checksum",
                                  examples=["510104199001011230"])
    phone: str | None = Field(default=None, description="手机或座机号码")
    address: str | None = Field(default=None, max_length=200)

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str | None) -> str | None:
        if v is None or v == "":
            return None
        if (msg := idnumber.problem(v)) is not None:
            raise ValueError(msg)
        return v.strip().upper()

    @field_validator("name", "address")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return _no_control(v)

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        if v and not _PHONE.match(v):
            raise ValueError("电话号码格式不正确 (phone must be a mainland mobile or 0xx-xxxxxxx landline)")
        return v or None


class PetitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra={"examples": [{
        "channel": "visit", "division": "510104", "title": "拖欠工资", "content": "某公司拖欠三个月工资未发。",
        "category": "劳动社保", "persons": 1, "petitioner": {"name": "张三", "id_number": "510104199001011230"}}]})
    channel: Channel = Field(description="渠道: letter 来信, visit 来访, phone 电话, online 网上, fax, email, forwarded 转来")
    division: str = Field(description="GB/T 2260 six-digit division code the matter belongs to")
    title: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1, max_length=5000)
    category: str | None = Field(default=None, description="类别; classified from the content when absent")
    persons: int = Field(default=1, ge=1, le=100000, description="number of persons raising the matter")
    representatives: list[PersonIn] = Field(default_factory=list, description="集体访 representatives (≤ 5)")
    target_agency: str | None = Field(default=None, description="agency id the petitioner addressed, if any")
    reported_agency: str | None = Field(default=None, description="检举控告: agency id of the body reported on")
    petitioner: PersonIn | None = None
    anonymous: bool = False

    @field_validator("division")
    @classmethod
    def _division(cls, v: str) -> str:
        if not re.fullmatch(r"\d{6}", v):
            raise ValueError("行政区划代码应为6位数字 (division must be a six-digit GB/T 2260 code)")
        divisions.name(v)  # raises UnknownDivision (a ValueError) with a clear message
        return v

    @field_validator("category")
    @classmethod
    def _category(cls, v: str | None) -> str | None:
        if v is not None and v not in CATEGORIES:
            raise ValueError(f"未知类别 unknown category; one of {', '.join(CATEGORIES)}")
        return v

    @field_validator("title", "content")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("不能为空 (must not be empty)")
        return _no_control(v)

    @model_validator(mode="after")
    def _people(self) -> "PetitionIn":
        if not self.anonymous and self.petitioner is None and not self.representatives:
            raise ValueError("petitioner: 非匿名信访须填写信访人 (petitioner required unless anonymous)")
        if len(self.representatives) > MAX_REPRESENTATIVES:
            raise ValueError(f"representatives: 集体访代表不得超过{MAX_REPRESENTATIVES}人 "
                             f"(at most {MAX_REPRESENTATIVES} representatives, got {len(self.representatives)})")
        if self.representatives and self.persons < COLLECTIVE_MIN_PERSONS:
            raise ValueError(f"representatives: 仅集体访（{COLLECTIVE_MIN_PERSONS}人以上）推选代表 "
                             "(representatives only for collective visits)")
        return self

    @property
    def collective(self) -> bool:
        return self.persons >= COLLECTIVE_MIN_PERSONS

    def people(self) -> list[PersonIn]:
        return ([self.petitioner] if self.petitioner else []) + list(self.representatives)
