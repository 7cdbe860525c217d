"""Counterfactual recourse: what would get a declined (or partly approved) application approved.

For a decision the model declined, or approved with a line below the amount asked, find up
to three smallest sets of changes the applicant could make — repay card balances, pay off
loans, ask for less, choose another term, settle court enforcement, repay what is overdue
now, choose an allowed purpose — that would make the same engine approve it (or grant the
amount asked), within the policy and every cap. Only actionable features move, only in the
direction that lowers risk, never past the training data's plausible bounds. Candidates are
judged in a few vectorised batches by the decision's own model (a fallback when an income
source did not answer) and policy, without explanations: lever sets of one, then two, then
three (on coarser grids), in order of size and effort (each lever's share of the move
available to it). A set that holds a smaller one already offered is never offered. Every
suggestion is then decided again by the full engine and kept only if that approves it. A
knock-out on evidence the applicant cannot change now gives none.

Why no library: DiCE (``dice-ml``) searches model-agnostically (random, genetic, KD-tree)
over a pandas frame, varying each feature on its own within ``features_to_vary`` and
``permitted_range`` towards a class of the classifier. It cannot state a joint change
(repaying cards lowers utilisation and debt-to-income together), knows nothing of the policy
that decides (knock-outs, grade multipliers, the debt-service bound, the caps), and costs
about half a second a query by its maintainers' own figure (interpretml/DiCE#218); a user
reports its XGBoost path varying features outside ``features_to_vary`` (#260). CARLA is a
benchmark harness whose methods mostly need TensorFlow or PyTorch models; alibi's
counterfactuals are TensorFlow-based, gradient- or training-driven. With a monotone model
and a handful of discrete levers, an exhaustive grid through the real model and policy is
exact on its grid, verified, and costs milliseconds.
"""

from scoring.recourse.levers import CARD_MINIMUM_SHARE, CHANGEABLE, LEVER_FEATURES, Change
from scoring.recourse.result import Outcome, RecourseResult, Suggestion
from scoring.recourse.search import FIXED_RULES, Recourse, RecourseError, quantile_bounds

__all__ = ["CARD_MINIMUM_SHARE", "CHANGEABLE", "FIXED_RULES", "LEVER_FEATURES", "Change",
           "Outcome", "Recourse", "RecourseError", "RecourseResult", "Suggestion",
           "quantile_bounds"]
