"""Blind studies: question sets, pre-generated pairs with the side key kept apart, raters, votes,
statistics and exports."""
