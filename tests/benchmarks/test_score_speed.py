import pandas as pd

import benchmarks.score_speed as score_speed


def test_tiling_keeps_the_nation_once_and_renames_the_regions():
    panel = pd.DataFrame(
        {
            "region": ["A", "A", "B", "Insgesamt", "Insgesamt"],
            "cluster": ["Shoes", "Shoes", "Shoes", "Shoes", "Insgesamt"],
            "year": [2020, 2021, 2020, 2020, 2020],
        }
    )
    out = score_speed.tiled(panel, 8)
    assert list(out["region"]) == [
        "Insgesamt",
        "Insgesamt",
        "A #00000",
        "A #00000",
        "B #00000",
        "A #00001",
        "A #00001",
        "B #00001",
    ]
    assert list(out["cluster"][:2]) == ["Shoes", "Insgesamt"]
