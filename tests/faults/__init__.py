"""Fault tests: node and client processes in network namespaces, with iptables faults."""
