# clickup -- make setup | make test | make demo
#
# setup is idempotent and quick once done: the Debian packages are installed only
# when one is missing, the venv is made once, and the project is reinstalled only
# when setup.py changes.

PY       := /usr/bin/python3
VENV     := .venv
VPY      := $(VENV)/bin/python
DEBS     := mininet iperf3 openvswitch-switch openvswitch-testcontroller bridge-utils \
            ethtool iputils-ping wget curl iproute2 procps util-linux netsniff-ng \
            python3-matplotlib
STAMP    := $(VENV)/.installed

.PHONY: setup debs venv test test-unit demo bench clean-venv

setup: debs $(STAMP)

debs:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run make setup as root)"; exit 1; fi; \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

$(VENV)/bin/python:
	$(PY) -m venv --system-site-packages $(VENV)

$(STAMP): $(VENV)/bin/python setup.py
	$(VPY) -m pip install -q --disable-pip-version-check pytest os-ken==4.2.2
	$(VPY) -m pip install -q --disable-pip-version-check -e .
	touch $(STAMP)

test: setup
	$(VPY) -m pytest tests -q -ra

test-unit: setup
	$(VPY) -m pytest tests -q -m "not root"

demo: setup
	$(VENV)/bin/clickup run transfer-point --quick --strategies none,native,clickup

bench: setup
	$(VENV)/bin/clickup bench dataplane

clean-venv:
	rm -rf $(VENV) *.egg-info
