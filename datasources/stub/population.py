"""Parameters of the synthetic population (documented in docs/synthetic-world.md)."""

from __future__ import annotations

from datetime import date

# Every person is drawn "as of" this date, so the same ID yields the same records on any day.
AS_OF = date(2026, 11, 1)

# Key of the keyed hash that turns a national ID into a person's random draws.
WORLD_KEY = b"flashloan/synthetic-world/v1"

CITY_TIERS = {
    1: ("北京", "上海", "广州", "深圳"),
    2: ("杭州", "南京", "成都", "武汉", "西安", "苏州", "天津", "重庆"),
    3: ("佛山", "无锡", "合肥", "昆明", "南宁", "温州", "石家庄", "徐州"),
    4: ("赣州", "洛阳", "岳阳", "绵阳", "曲靖", "桂林", "襄阳", "宜宾"),
}
CITY_TIER_P = (0.20, 0.30, 0.30, 0.20)
# Median monthly income (CNY) by city tier.
CITY_MEDIAN_INCOME = {1: 12_000.0, 2: 8_500.0, 3: 6_500.0, 4: 5_000.0}
# Contribution base floor and cap by city tier (social security and provident fund alike).
BASE_FLOOR = {1: 6_500.0, 2: 4_500.0, 3: 3_800.0, 4: 3_200.0}
BASE_CAP = {1: 35_000.0, 2: 25_000.0, 3: 20_000.0, 4: 16_000.0}

EMPLOYER_TYPES = ("government", "soe", "public_institution", "private", "foreign", "other")
EMPLOYER_TYPE_P = (0.08, 0.12, 0.08, 0.55, 0.05, 0.12)
# Log-income shift by employer type.
EMPLOYER_INCOME_SHIFT = (0.10, 0.15, 0.05, 0.0, 0.30, -0.15)
# Probability of a provident-fund account by employer type.
PF_ACCOUNT_P = (0.97, 0.95, 0.95, 0.60, 0.85, 0.08)
# Probability of social-security enrolment by employer type.
SS_ENROLLED_P = (0.99, 0.98, 0.98, 0.90, 0.97, 0.35)
# Probability of salary tax records by employer type ("other" is mostly informal income).
TAX_RECORD_P = (0.98, 0.97, 0.97, 0.88, 0.97, 0.22)
INCOME_SIGMA = 0.45

EMPLOYER_NAMES = {
    "government": ("市财政局", "区税务局", "市人力资源和社会保障局", "区教育局"),
    "soe": ("国家电网有限公司", "中国移动通信集团", "中国建筑股份有限公司", "中国石化销售有限公司"),
    "public_institution": ("市第一人民医院", "市实验中学", "省农业科学院", "市图书馆"),
    "private": ("华信科技有限公司", "盛达物流有限公司", "佳美餐饮管理有限公司",
                "远航电子商务有限公司", "恒通建材有限公司", "新锐软件有限公司",
                "安居物业服务有限公司", "优品零售连锁有限公司"),
    "foreign": ("西门子(中国)有限公司", "联合利华(中国)有限公司", "博世汽车部件有限公司"),
    "other": ("个体经营", "自由职业", "灵活就业"),
}

PURPOSES_ALLOWED = ("daily_consumption", "home_renovation", "education", "travel", "medical",
                    "wedding", "durable_goods")
PURPOSES_FORBIDDEN = ("securities", "property", "business")
PURPOSE_P_FORBIDDEN = 0.04
TERMS = (3, 6, 12, 24, 36)
TERM_P = (0.08, 0.17, 0.40, 0.20, 0.15)

# Regions used to mint national IDs for a synthetic population (birthplace is never a feature).
REGIONS = ("110101", "310104", "440106", "440305", "330106", "320102", "510107", "420106",
           "610113", "370102", "410105", "430104", "350102", "500103", "120101", "210102")

# Share of people whose sources disagree: one contribution base inflated (e.g. paid-for
# contributions), and people whose two social records name different employers.
INFLATED_P = 0.04
EMPLOYER_MISMATCH_P = 0.03

# True risk: the log-odds of a 12-month default (see docs/synthetic-world.md for the formula).
TRUE_RISK = {
    "intercept": -4.45,
    "log_income": -0.85,          # per ln(income / 8000)
    "dti": 0.9,
    "dti_x_util": 2.6,            # the non-linear part: debt burden bites when cards are full
    "util": 0.6,
    "overdue_count": 0.35,        # per delinquency in 24 months, capped at 6
    "worst_overdue": 0.30,        # per month of the worst delinquency, capped at 6
    "inquiries_3m": 0.22,         # per hard inquiry, capped at 8
    "thin_file_young": 0.55,      # no credit file and under 26
    "pf_normal": -0.45,
    "ss_months": -0.012,          # per continuous month, capped at 60
    "employer_changes": 0.22,     # per change in 24 months
    "stable_employer": -0.30,     # government, SOE, public institution
    "inflated_income": 1.30,
    "employer_mismatch": 0.55,
    "dishonest_debtor": 2.4,
    "consumption_restricted": 1.4,
    "enforcement_open": 0.8,
    "lawsuits": 0.25,
    "overdue_now": 1.8,
    "bad_debt": 2.5,
    "latent_sigma": 0.20,         # what no source shows
}
