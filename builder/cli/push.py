"""`builder push PATH REPO`: a verified bundle to a Hugging Face Hub model repo."""

from __future__ import annotations

import argparse
from pathlib import Path

from builder.cli.fail import fail
from builder.errors import BuilderError


def push(argv: list[str]) -> int:
    """Verify a bundle, then upload it to a Hub model repo: its card is the repo's README; the bundle id is the
    commit message and a tag, so a pulled bundle names the build it came from."""
    from builder.runtime.loader import hub_reachable
    from builder.runtime.manifest import verify

    parser = argparse.ArgumentParser(prog="builder push", description=push.__doc__)
    parser.add_argument("path", type=Path, help="bundle folder")
    parser.add_argument("repo_id", help="Hub model repo, e.g. org/name (created if missing)")
    parser.add_argument("--private", action="store_true", help="create the repo private")
    parser.add_argument("--revision", help="branch to push to (created if missing; default main)")
    parser.add_argument("--dry-run", action="store_true", help="verify and show what would be uploaded")
    args = parser.parse_args(argv)
    try:
        manifest = verify(args.path)
    except BuilderError as e:
        return fail(e)
    bid = manifest["bundle_id"]
    files = [*sorted(manifest["files"]), "manifest.json"]
    message, tag = f"builder bundle {bid}", f"bundle-{bid[:12]}"
    where = f"{args.repo_id}{'@' + args.revision if args.revision else ''}"
    plan = [
        f"push {args.path} -> {where} ({'private' if args.private else 'public'} if created)",
        f"commit message: {message}",
        f"tag: {tag}",
        f"files ({len(files)}):",
        *(f"  {name}" for name in files),
    ]
    if args.dry_run:
        print("\n".join(plan))
        return 0
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE or not hub_reachable(constants.ENDPOINT):
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else constants.ENDPOINT
        return fail(
            BuilderError(
                f"builder push {args.repo_id}: the Hugging Face Hub is unreachable from this machine ({why}). "
                "Copy the bundle folder to a machine that reaches it and push from there (builder verify checks "
                "the copy)."
            )
        )
    api = HfApi()
    try:
        api.create_repo(args.repo_id, private=args.private, exist_ok=True, repo_type="model")
        if args.revision:
            api.create_branch(args.repo_id, branch=args.revision, exist_ok=True)
        commit = api.upload_folder(
            folder_path=str(args.path),
            repo_id=args.repo_id,
            revision=args.revision,
            commit_message=message,
            allow_patterns=files,
        )
        api.create_tag(args.repo_id, tag=tag, revision=commit.oid, exist_ok=True)
    except Exception as e:  # no token, no permission, a network failure
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        return fail(
            BuilderError(
                f"builder push {where}: the Hub refused it ({type(e).__name__}: {first}). Log in with "
                "`hf auth login` (or set HF_TOKEN) with write access to the repo."
            )
        )
    print(f"pushed {len(files)} files to {commit.commit_url} (tag {tag})")
    return 0
