"""Remote SUT hosts: the hosts file, SSH connections, and the offline base image."""
