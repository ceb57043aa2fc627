"""EC2: an interface endpoint's network interfaces hold addresses of their own subnets.

moto gives each one a random address anywhere in 10.0.0.0/8, which its subnet does not contain; AWS
takes a free address of the subnet, and that address is what the endpoint's DNS names resolve to inside
the VPC (where the ``vpcnet`` extension answers on it).
"""
from __future__ import annotations


def apply() -> None:
    from moto.ec2.models.vpcs import VPCBackend

    from .elbv2 import free_address

    create = VPCBackend.create_vpc_endpoint

    def create_vpc_endpoint(self, *args, **kwargs):
        endpoint = create(self, *args, **kwargs)
        for eni_id in endpoint.network_interface_ids or []:
            eni = self.enis.get(eni_id)
            if eni is None or eni.subnet is None:
                continue
            eni.private_ip_address = None  # its own random address must not count as taken
            address = free_address(self, eni.subnet, endpoint.id)
            eni.private_ip_address = address
            eni.private_ip_addresses = [{"Primary": True, "PrivateIpAddress": address}]
            eni.description = f"VPC Endpoint Interface {endpoint.id}"
            eni.interface_type = "vpc_endpoint"
            groups = [self.get_security_group_from_id(g) for g in endpoint.security_group_ids or []]
            eni._group_set = [g for g in groups if g is not None]
        return endpoint

    VPCBackend.create_vpc_endpoint = create_vpc_endpoint  # the class privatelink patches too, around this
