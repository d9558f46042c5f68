import os


def main():
    print('greetings from %s' % os.environ.get('GREET_WHO', 'nobody'))
