"""Describes every service a server lists through server reflection, with
grpcio-reflection's client (which speaks grpc.reflection.v1alpha).

Usage: reflection_client.py ADDR
Prints one line per listed service: "SERVICE: Method1 Method2 ...", built
from the schema files reflection sent (a service whose file or methods
cannot be resolved fails the script with exit 1).
"""

import sys

import grpc
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def main(addr):
    with grpc.insecure_channel(addr) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        pool = DescriptorPool(database)
        for name in database.get_services():
            service = pool.FindServiceByName(name)
            methods = " ".join(m.name for m in service.methods)
            print(f"{name}: {methods}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
