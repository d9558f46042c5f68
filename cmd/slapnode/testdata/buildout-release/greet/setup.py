from setuptools import setup

setup(
    name='greet',
    version='0.1',
    packages=['greet'],
    entry_points={'console_scripts': ['greet = greet:main']},
)
