from setuptools import find_packages, setup

setup(
    name="clickup",
    version="0.1.0",
    description="A testbed for in-service software upgrades of stateful network functions",
    packages=find_packages(include=["nf", "nf.*", "topologies", "topologies.*", "experiments",
                                    "experiments.*", "plots", "plots.*"]),
    python_requires=">=3.9",
    entry_points={"console_scripts": ["clickup = experiments.cli:main"]},
)
