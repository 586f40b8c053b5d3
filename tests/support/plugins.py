"""Plugins written as text, for the tests that load them as users' files."""

# A loss whose G loss raises at run time (not at registration): a crash inside a plugin's code.
RAISING_PLUGIN = '''
import dataclasses

from ganzoo import Loss, Variant, register_loss, register_variant


@register_loss("test-plugin-raises")
@dataclasses.dataclass(frozen=True)
class Raises(Loss):
    def discriminator_loss(self, real, fake):
        return (fake - real).mean()

    def generator_loss(self, fake):
        raise ValueError("no G loss today")


register_variant("test-plugin-raises-mlp", Variant("test-plugin-raises", "mlp"))
'''
