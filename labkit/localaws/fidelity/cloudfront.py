"""CloudFront: origin access control names are unique in an account, as on AWS.

moto makes a second OAC with the same name, so a lab 01 cell re-run without
looking for its OAC first works offline and fails on AWS
(OriginAccessControlAlreadyExists); the local AWS refuses it the same way.
"""
from __future__ import annotations


def apply() -> None:
    from moto.cloudfront.exceptions import CloudFrontException
    from moto.cloudfront.models import CloudFrontBackend

    original = CloudFrontBackend.create_origin_access_control

    def create_origin_access_control(self, config_dict):
        name = config_dict.get("Name")
        if any(control.name == name for control in self.origin_access_controls.values()):
            raise CloudFrontException("OriginAccessControlAlreadyExists",
                                      "An origin access control with the specified parameters already exists.")
        return original(self, config_dict)

    CloudFrontBackend.create_origin_access_control = create_origin_access_control
