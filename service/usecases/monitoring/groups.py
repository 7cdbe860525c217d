"""The groups fairness is monitored by: sex, age band and province.

They are read from the national ID when a decision is made (GB 11643: the 17th digit is odd
for men and even for women; the first two digits are the province under GB/T 2260; the
birth date gives the age) and counted in the roll-up, never stored per applicant and never
given to the model: the model's features come from the five sources alone. Monitoring them
shows whether the outcomes of a model that never saw them still differ between groups.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasources.identity import PROVINCE_CODES, NationalId

DIMENSIONS: dict[str, str] = {"sex": "Sex", "age_band": "Age band", "province": "Province"}

SEXES = {"female": "Female", "male": "Male"}
# Bands of whole years; the service decides applicants of 18 and over only.
AGE_BANDS: tuple[tuple[str, int, int | None], ...] = (
    ("18-24", 18, 24), ("25-34", 25, 34), ("35-44", 35, 44), ("45-54", 45, 54),
    ("55+", 55, None))
PROVINCES: dict[str, tuple[str, str]] = {
    "11": ("Beijing", "北京"), "12": ("Tianjin", "天津"), "13": ("Hebei", "河北"),
    "14": ("Shanxi", "山西"), "15": ("Inner Mongolia", "内蒙古"), "21": ("Liaoning", "辽宁"),
    "22": ("Jilin", "吉林"), "23": ("Heilongjiang", "黑龙江"), "31": ("Shanghai", "上海"),
    "32": ("Jiangsu", "江苏"), "33": ("Zhejiang", "浙江"), "34": ("Anhui", "安徽"),
    "35": ("Fujian", "福建"), "36": ("Jiangxi", "江西"), "37": ("Shandong", "山东"),
    "41": ("Henan", "河南"), "42": ("Hubei", "湖北"), "43": ("Hunan", "湖南"),
    "44": ("Guangdong", "广东"), "45": ("Guangxi", "广西"), "46": ("Hainan", "海南"),
    "50": ("Chongqing", "重庆"), "51": ("Sichuan", "四川"), "52": ("Guizhou", "贵州"),
    "53": ("Yunnan", "云南"), "54": ("Tibet", "西藏"), "61": ("Shaanxi", "陕西"),
    "62": ("Gansu", "甘肃"), "63": ("Qinghai", "青海"), "64": ("Ningxia", "宁夏"),
    "65": ("Xinjiang", "新疆"), "71": ("Taiwan", "台湾"), "81": ("Hong Kong", "香港"),
    "82": ("Macao", "澳门"),
}
assert set(PROVINCES) == PROVINCE_CODES, "every province code has a name"


@dataclass(frozen=True, slots=True)
class Groups:
    """An applicant's group in each dimension: the keys the roll-up counts by."""

    sex: str
    age_band: str
    province: str

    def items(self) -> tuple[tuple[str, str], ...]:
        return (("sex", self.sex), ("age_band", self.age_band), ("province", self.province))


def age_band(age: int) -> str:
    for name, low, high in AGE_BANDS:
        if age >= low and (high is None or age <= high):
            return name
    return f"under {AGE_BANDS[0][1]}"


def groups_of(nid: NationalId, age: int) -> Groups:
    """The groups of the holder of ``nid``, aged ``age`` on the day of the decision."""
    return Groups(sex="male" if int(nid.number[16]) % 2 else "female",
                  age_band=age_band(age), province=nid.region[:2])


def group_label(dimension: str, group: str) -> str:
    """How a group is named on the dashboard."""
    if dimension == "sex":
        return SEXES.get(group, group)
    if dimension == "province":
        names = PROVINCES.get(group)
        return f"{names[0]} {names[1]}" if names else group
    return group


def group_order(dimension: str, group: str) -> tuple[int, str]:
    """Where a group comes in its dimension's table: age bands in age order, others by name."""
    if dimension == "age_band":
        names = [name for name, _, _ in AGE_BANDS]
        return (names.index(group) if group in names else -1, group)
    return (0, group_label(dimension, group))
