"""The authsvc contract: generated protobuf/gRPC code (`authsvc_proto.v1`) and the error words."""
