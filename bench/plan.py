"""How big each part of a run is: the full run (~10 min on 2 cores) and --quick (~2 min)."""
from __future__ import annotations

from dataclasses import dataclass, field

from dataset import ImageSet


@dataclass(frozen=True)
class Plan:
    name: str
    cold12: int  # distinct 12 MP originals for the cold run (each requested once)
    cold2: int  # distinct 2 MP originals
    png12: int  # distinct 12 MP PNG originals
    big48: int  # distinct 48 MP originals for the RSS run
    rss_sizes: tuple[int, ...]  # boxes asked of each 48 MP original
    rss_checkpoints: tuple[int, int]  # RSS compared after this many requests and after that many
    load_s: float  # time bound of one Python-generator run
    hot_s: float  # length of one wrk run
    hot_rounds: int  # rounds of (cache hit, bare WSGI, 304), interleaved against drift
    cold_rounds: int  # rounds of (decode floor, image_repo, thumbor) on the cold 12 MP set, interleaved
    listing_names: int = 100_000
    box: int = 256  # the cold request: fit in 256x256
    second_box: int = 128  # the "second size" of an already-seen original
    warm: int = 8  # originals used to warm workers up before timed runs (never timed)
    sets: list[ImageSet] = field(default_factory=list)

    def image_sets(self) -> dict[str, ImageSet]:
        """Every set of originals the run needs (each only as large as this plan needs)."""
        return {
            "warm12": ImageSet("warm12", "photo12mp.jpg", self.warm),
            "cold12": ImageSet("cold12", "photo12mp.jpg", self.cold12),
            "cold2": ImageSet("cold2", "photo2mp.jpg", self.cold2),
            "png12": ImageSet("png12", "photo12mp.png", self.png12),
            "big48": ImageSet("big48", "photo48mp.jpg", self.big48),
            "burst": ImageSet("burst", "photo12mp.jpg", 1),
        }


FULL = Plan(
    name="full",
    cold12=900,  # ~13 s at the ~70 req/s 2 cores can do
    cold2=1500,  # ~6 s at ~270 req/s
    png12=48,  # ~4 s at ~12 req/s (no DCT scaling for PNG)
    big48=40,
    rss_sizes=(64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 480, 512),
    rss_checkpoints=(1000, 5000),
    load_s=25.0,
    hot_s=4.0,
    hot_rounds=7,  # short rounds, many: each round re-draws how connections land on workers
    cold_rounds=6,  # the goals want >= 6 interleaved rounds and the spread of their ratios
)

QUICK = Plan(
    name="quick",
    cold12=300,
    cold2=400,
    png12=16,
    big48=12,
    rss_sizes=(64, 128, 192, 256, 320, 384, 448, 512),
    rss_checkpoints=(200, 1000),
    load_s=10.0,
    hot_s=2.0,
    hot_rounds=3,  # an odd count: the median is a round, not the lower of two
    cold_rounds=6,
)
