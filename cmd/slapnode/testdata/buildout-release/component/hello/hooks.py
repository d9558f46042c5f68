# A hook of slapos.recipe.cmmi: called after make install, in the source
# tree, with the part's options, the buildout sections and the build
# environment.
import os


def post_make_hook(options, buildout, environ):
    assert os.path.exists('Makefile'), 'not run in the source tree'
    share = os.path.join(options['location'], 'share')
    os.makedirs(share, exist_ok=True)
    with open(os.path.join(share, 'hook'), 'w') as f:
        f.write('mark %s\n' % environ['GREETING_MARK'])
