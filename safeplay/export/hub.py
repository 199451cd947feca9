"""Upload an exported folder to the Hugging Face Hub (``safeplay export --push-to-hub REPO``)."""

from __future__ import annotations

import os
from pathlib import Path

from safeplay.errors import SafeplayError

_TRUE = ("1", "true", "yes", "on")


def push_to_hub(folder: Path, repo: str, private: bool = False) -> str:
    """Create ``repo`` (a model repository; kept if it exists) and upload ``folder`` into it; returns its URL.

    Needs a token (``hf auth login`` or ``HF_TOKEN``) and a network: without either the error says so at once,
    and the exported folder stays where it is."""
    from huggingface_hub import HfApi, constants, get_token

    keep = f"the export is in {folder}"
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE:
        raise SafeplayError(f"--push-to-hub: offline mode is on (HF_HUB_OFFLINE); unset it to upload ({keep})")
    token = get_token()
    if not token:
        raise SafeplayError(f"--push-to-hub needs a Hugging Face token: run `hf auth login` or set HF_TOKEN ({keep})")
    api = HfApi(token=token)
    try:
        url = api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo, repo_type="model", folder_path=str(folder),
                          commit_message="Upload a model exported by safeplay")
    except Exception as e:  # network, auth and validation errors come in many types
        first = str(e).splitlines()[0] if str(e) else ""
        raise SafeplayError(f"--push-to-hub {repo} failed: {type(e).__name__}: {first} ({keep})") from None
    return str(url)
