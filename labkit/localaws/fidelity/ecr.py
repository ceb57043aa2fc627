"""ECR: an image's digest is its manifest's sha256, an immutable tag refuses a changed push, a moved
tag leaves the old image untagged, and lifecycle policies are held to ECR's rules.

moto names an image by a hash of its layer digests (every config-only manifest gets the same
digest), answers a changed push to an immutable tag with the wrong exception, drops the old image
when a mutable tag moves (ECR keeps it, untagged: what an "expire untagged" rule is for), and
accepts lifecycle policies ECR refuses. Which images a policy expires is ``labkit.ecrlifecycle``'s
to say: the lifecycle policy preview (which moto lacks) reports it, as on AWS; nothing is deleted,
as moto deletes nothing either.
"""
from __future__ import annotations

import fnmatch
import hashlib

from labkit.ecrlifecycle import expired, refusal_message

IMMUTABLE_TAG = ("The image tag '{tag}' already exists in the '{repository}' repository and cannot be "
                 "overwritten because the repository is immutable.")


def manifest_digest(manifest: str | bytes) -> str:
    """An image's digest: the sha256 of its manifest exactly as pushed."""
    data = manifest.encode() if isinstance(manifest, str) else manifest
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tag_immutable(repository, tag: str) -> bool:
    """Whether ``tag`` may not move in this repository (exclusion filters are ``*`` wildcards)."""
    mode = getattr(repository, "image_tag_mutability", "MUTABLE")
    mode = getattr(mode, "value", mode)  # moto keeps an Enum
    filters = getattr(repository, "image_tag_mutability_exclusion_filters", None) or []
    excluded = any(fnmatch.fnmatchcase(tag, f.get("filter", "")) for f in filters)
    return {"IMMUTABLE": True, "IMMUTABLE_WITH_EXCLUSION": not excluded,
            "MUTABLE_WITH_EXCLUSION": excluded}.get(mode, False)


def apply() -> None:
    _digest_of_the_manifest()
    _put_image()
    _lifecycle_policy_rules()
    _lifecycle_policy_preview()


def _digest_of_the_manifest() -> None:
    from moto.ecr.models import Image

    def create_digest(self):
        self._image_digest = manifest_digest(self.image_manifest)

    Image._create_digest = create_digest


def _put_image() -> None:
    from moto.ecr.exceptions import ImageAlreadyExistsException, RepositoryNotFoundException
    from moto.core.exceptions import JsonRESTError
    from moto.ecr.models import ECRBackend

    original = ECRBackend.put_image

    def put_image(self, repository_name, image_manifest, image_tag, image_manifest_mediatype=None, digest=None):
        repository = self.repositories.get(repository_name)
        if repository is None:  # moto raises a bare Exception here: a 500
            raise RepositoryNotFoundException(repository_name, self.account_id)
        pushed = manifest_digest(image_manifest)
        same = next((i for i in repository.images if i.get_image_digest() == pushed), None)
        holder = next((i for i in repository.images if image_tag and image_tag in i.image_tags), None)
        if holder is not None and holder is same:
            raise ImageAlreadyExistsException(registry_id=repository.registry_id, image_tag=image_tag,
                                              digest=pushed, repository_name=repository_name)
        if holder is not None and tag_immutable(repository, image_tag):
            raise JsonRESTError("ImageTagAlreadyExistsException",
                                IMMUTABLE_TAG.format(tag=image_tag, repository=repository_name))
        if same is None:
            # moto's own path validates the manifest JSON and media type; the tag is moved below.
            image = original(self, repository_name, image_manifest, None, image_manifest_mediatype, pushed)
        else:
            image = same
        if holder is not None:  # the tag moves; the image it left stays, untagged if that was its last tag
            holder.remove_tag(image_tag)
            if not holder.image_tags:
                holder.image_tag = None
        if image_tag:
            image.update_tag(image_tag)
        return image

    ECRBackend.put_image = put_image


def _lifecycle_policy_rules() -> None:
    from moto.ecr.exceptions import InvalidParameterException
    from moto.ecr.models import ECRBackend
    from moto.ecr.policy_validation import EcrLifecyclePolicyValidator

    original = ECRBackend.put_lifecycle_policy

    def put_lifecycle_policy(self, registry_id, repository_name, lifecycle_policy_text):
        self._get_repository(repository_name, registry_id)  # a missing repository is refused first
        EcrLifecyclePolicyValidator(lifecycle_policy_text).validate()  # moto's schema check
        message = refusal_message(lifecycle_policy_text)
        if message:
            raise InvalidParameterException(message)
        return original(self, registry_id, repository_name, lifecycle_policy_text)

    ECRBackend.put_lifecycle_policy = put_lifecycle_policy


def preview_results(repository, policy_text: str) -> list[dict]:
    """GetLifecyclePolicyPreview's previewResults for this repository's images under ``policy_text``."""
    from datetime import datetime, timezone

    details = [{"imageDigest": i.get_image_digest(), "imageTags": list(i.image_tags),
                "imagePushedAt": datetime.fromtimestamp(i.image_pushed_at, timezone.utc)} for i in repository.images]
    return [{"imageTags": list(e.tags), "imageDigest": e.digest, "imagePushedAt": e.pushed_at,
             "action": {"type": "EXPIRE"}, "appliedRulePriority": e.rule_priority}
            for e in expired(policy_text, details)]


def _lifecycle_policy_preview() -> None:
    """StartLifecyclePolicyPreview / GetLifecyclePolicyPreview, answered from the one evaluator.

    ECR runs the preview in the background; here it is complete at once (its result is the same)."""
    from moto.core.exceptions import JsonRESTError
    from moto.core.responses import ActionResult
    from moto.ecr.exceptions import InvalidParameterException, LifecyclePolicyNotFoundException
    from moto.ecr.responses import ECRResponse

    def start_lifecycle_policy_preview(self):
        name = self._get_param("repositoryName")
        repository = self.ecr_backend._get_repository(name, self._get_param("registryId"))
        text = self._get_param("lifecyclePolicyText") or repository.lifecycle_policy
        if not text:
            raise LifecyclePolicyNotFoundException(name, repository.registry_id)
        message = refusal_message(text)
        if message:
            raise InvalidParameterException(message)
        repository.labkit_lifecycle_preview = {"text": text, "results": preview_results(repository, text)}
        return ActionResult({"registryId": repository.registry_id, "repositoryName": name,
                             "lifecyclePolicyText": text, "status": "IN_PROGRESS"})

    def get_lifecycle_policy_preview(self):
        name = self._get_param("repositoryName")
        repository = self.ecr_backend._get_repository(name, self._get_param("registryId"))
        preview = getattr(repository, "labkit_lifecycle_preview", None)
        if preview is None:
            raise JsonRESTError("LifecyclePolicyPreviewNotFoundException",
                                f"There is no dry run for the repository with name '{name}' in the registry "
                                f"with id '{repository.registry_id}'")
        return ActionResult({"registryId": repository.registry_id, "repositoryName": name,
                             "lifecyclePolicyText": preview["text"], "status": "COMPLETE",
                             "previewResults": preview["results"],
                             "summary": {"expiringImageTotalCount": len(preview["results"])}})

    ECRResponse.start_lifecycle_policy_preview = start_lifecycle_policy_preview
    ECRResponse.get_lifecycle_policy_preview = get_lifecycle_policy_preview
