"""Built-in plugin ``hub``: publishes leaderboard entries as pull requests on a Hugging Face dataset repo."""

from __future__ import annotations

from pydantic import Field

from rftbench import Params, PublisherSpec, hookimpl


class HubPublisherParams(Params):
    """Where the leaderboard lives."""

    repo: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*/[A-Za-z0-9][A-Za-z0-9_.\-]*$", description="the dataset repo, ORG/NAME")
    endpoint: str | None = Field(None, description="Hub URL (default: huggingface_hub's, i.e. HF_ENDPOINT or huggingface.co)")
    cache_dir: str | None = Field(None, description="huggingface_hub cache for the downloaded entries")


def _build(repo: str, endpoint: str | None, cache_dir: str | None):
    from rftbench.leaderboard.hub import HubPublisher

    return HubPublisher(repo, endpoint=endpoint, cache_dir=cache_dir)


@hookimpl
def rftbench_add_publishers() -> list[PublisherSpec]:
    return [
        PublisherSpec(
            name="hub",
            description="pull requests on the leaderboard's Hugging Face dataset repo (huggingface_hub create_commit, create_pr=True)",
            params=HubPublisherParams,
            factory=_build,
        )
    ]
