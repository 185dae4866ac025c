//! What is sold: the plans ([`Catalogue`]), each a Stripe price granting credits per period,
//! and what a message costs per model ([`MessagePrices`]).

use std::collections::BTreeMap;
use std::fmt;

/// A plan's id (`plus`, `pro`), as shown in `current_plan` and chosen at checkout, parsed once:
/// 1 to 32 characters of `a-z`, `0-9`, `_` and `-`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlanId(String);

/// Why a plan id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a plan id is 1 to 32 characters of a-z, 0-9, _ and -")]
pub struct InvalidPlanId;

impl PlanId {
    /// Accepts `raw` if it is 1 to 32 characters of `a-z`, `0-9`, `_` and `-`.
    pub fn parse(raw: &str) -> Result<PlanId, InvalidPlanId> {
        let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b);
        if raw.is_empty() || raw.len() > 32 || !raw.bytes().all(allowed) {
            return Err(InvalidPlanId);
        }
        Ok(PlanId(raw.to_owned()))
    }

    /// The id itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlanId({})", self.0)
    }
}

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One plan: a Stripe price and the credits each paid period of it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// Its Stripe price (`price_...`).
    pub price_id: String,
    /// Credits granted per paid period (1 to [`Catalogue::MAX_CREDITS`]).
    pub credits: i64,
    /// Whether it is sold: a retired plan's subscribers are still recognised and granted its
    /// credits, but no new checkout can choose it.
    pub sold: bool,
}

/// Why a catalogue was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// No plan is sold.
    #[error("lists no plan")]
    Empty,
    /// Two sold plans share an id.
    #[error("lists a plan id twice")]
    DuplicateId,
    /// Two plans share a Stripe price.
    #[error("lists a price twice")]
    DuplicatePrice,
    /// A plan's credits are outside 1 to [`Catalogue::MAX_CREDITS`].
    #[error("has credits outside 1 to 1000000")]
    Credits,
}

/// The plans this service knows: those sold (the first is the default) and those retired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    plans: Vec<Plan>,
}

/// A checkout asked for a plan that is not sold (unknown, or retired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no such plan is sold")]
pub struct UnknownPlan;

impl Catalogue {
    /// The most credits a plan may grant per period.
    pub const MAX_CREDITS: i64 = 1_000_000;

    /// The catalogue of `sold` (at least one; the first is the default) and `retired` plans.
    /// Ids are unique among the sold (a retired price may keep the id of the plan it was, or of
    /// the plan that replaced it), prices unique across both.
    pub fn new(sold: Vec<Plan>, retired: Vec<Plan>) -> Result<Catalogue, CatalogueError> {
        if sold.is_empty() {
            return Err(CatalogueError::Empty);
        }
        let mut ids: Vec<&PlanId> = sold.iter().map(|plan| &plan.id).collect();
        ids.sort();
        if ids.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(CatalogueError::DuplicateId);
        }
        let plans: Vec<Plan> = sold
            .into_iter()
            .map(|plan| Plan { sold: true, ..plan })
            .chain(retired.into_iter().map(|plan| Plan {
                sold: false,
                ..plan
            }))
            .collect();
        if plans
            .iter()
            .any(|plan| !(1..=Self::MAX_CREDITS).contains(&plan.credits))
        {
            return Err(CatalogueError::Credits);
        }
        let mut prices: Vec<&str> = plans.iter().map(|plan| plan.price_id.as_str()).collect();
        prices.sort_unstable();
        if prices.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(CatalogueError::DuplicatePrice);
        }
        Ok(Catalogue { plans })
    }

    /// The plan a checkout without a choice sells: the first sold.
    pub fn default_plan(&self) -> &Plan {
        &self.plans[0]
    }

    /// The plans sold, in their configured order.
    pub fn sold(&self) -> impl Iterator<Item = &Plan> {
        self.plans.iter().filter(|plan| plan.sold)
    }

    /// The plan of Stripe price `price`, sold or retired; `None` for a price this service does
    /// not sell (a subscription to it entitles nothing).
    pub fn for_price(&self, price: &str) -> Option<&Plan> {
        self.plans.iter().find(|plan| plan.price_id == price)
    }

    /// The sold plan a checkout asked for by `id` (`None`: the default).
    pub fn to_sell(&self, id: Option<&str>) -> Result<&Plan, UnknownPlan> {
        match id {
            None => Ok(self.default_plan()),
            Some(id) => self
                .sold()
                .find(|plan| plan.id.as_str() == id)
                .ok_or(UnknownPlan),
        }
    }
}

/// What a message costs, in credits, per model: an entry per model, and a default for every
/// model not listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePrices {
    default: i64,
    models: BTreeMap<String, i64>,
}

/// Why a price table was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MessagePriceError {
    /// A price outside 1 to [`MessagePrices::MAX_PRICE`].
    #[error("has a price outside 1 to 10000")]
    Price,
    /// A model listed twice, or a model name that is empty or over 128 characters.
    #[error("lists a model twice, or an empty or over-long model name")]
    Model,
}

impl Default for MessagePrices {
    /// One credit a message, whatever the model.
    fn default() -> Self {
        MessagePrices {
            default: 1,
            models: BTreeMap::new(),
        }
    }
}

impl MessagePrices {
    /// The most a message may cost.
    pub const MAX_PRICE: i64 = 10_000;
    /// The model name whose price applies to every model not listed.
    pub const DEFAULT_MODEL: &'static str = "default";

    /// The table of `(model, credits)` entries; [`MessagePrices::DEFAULT_MODEL`] prices the
    /// models not listed (1 credit without it).
    pub fn new(
        entries: impl IntoIterator<Item = (String, i64)>,
    ) -> Result<MessagePrices, MessagePriceError> {
        let mut prices = MessagePrices::default();
        let mut seen_default = false;
        for (model, credits) in entries {
            if !(1..=Self::MAX_PRICE).contains(&credits) {
                return Err(MessagePriceError::Price);
            }
            if model.is_empty() || model.len() > 128 {
                return Err(MessagePriceError::Model);
            }
            let duplicate = if model == Self::DEFAULT_MODEL {
                prices.default = credits;
                std::mem::replace(&mut seen_default, true)
            } else {
                prices.models.insert(model, credits).is_some()
            };
            if duplicate {
                return Err(MessagePriceError::Model);
            }
        }
        Ok(prices)
    }

    /// What a message to `model` costs.
    pub fn price_of(&self, model: &str) -> i64 {
        self.models.get(model).copied().unwrap_or(self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(id: &str, price: &str, credits: i64) -> Plan {
        Plan {
            id: PlanId::parse(id).unwrap(),
            price_id: price.into(),
            credits,
            sold: true,
        }
    }

    #[test]
    fn plan_ids_are_short_lowercase_words() {
        for good in ["pro", "plus_2", "team-eu", &"a".repeat(32)] {
            assert_eq!(PlanId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "Pro", "pro plan", &"a".repeat(33), "pro:1", "é"] {
            assert_eq!(PlanId::parse(bad), Err(InvalidPlanId), "{bad:?}");
        }
    }

    #[test]
    fn the_catalogue_sells_its_first_plan_by_default_and_never_a_retired_one() {
        let catalogue = Catalogue::new(
            vec![plan("plus", "price_a", 1000), plan("pro", "price_b", 5000)],
            vec![plan("pro", "price_old", 4000)],
        )
        .unwrap();
        assert_eq!(catalogue.default_plan().id.as_str(), "plus");
        assert_eq!(catalogue.to_sell(Some("pro")).unwrap().price_id, "price_b");
        assert_eq!(catalogue.to_sell(Some("team")), Err(UnknownPlan));
        let retired = catalogue.for_price("price_old").unwrap();
        assert_eq!((retired.credits, retired.sold), (4000, false));
        assert_eq!(catalogue.for_price("price_other"), None);
        let sold: Vec<&str> = catalogue.sold().map(|p| p.id.as_str()).collect();
        assert_eq!(sold, ["plus", "pro"]);
    }

    #[test]
    fn a_catalogue_with_repeats_or_bad_credits_is_refused() {
        let refused = |sold, retired| Catalogue::new(sold, retired).unwrap_err();
        assert_eq!(refused(vec![], vec![]), CatalogueError::Empty);
        assert_eq!(
            refused(vec![plan("a", "p1", 1), plan("a", "p2", 2)], vec![]),
            CatalogueError::DuplicateId
        );
        assert_eq!(
            refused(vec![plan("a", "p1", 1)], vec![plan("b", "p1", 2)]),
            CatalogueError::DuplicatePrice
        );
        for credits in [0, -1, 1_000_001] {
            assert_eq!(
                refused(vec![plan("a", "p1", credits)], vec![]),
                CatalogueError::Credits
            );
        }
    }

    #[test]
    fn models_not_listed_cost_the_default() {
        let prices =
            MessagePrices::new([("large".to_owned(), 5), ("default".to_owned(), 2)]).unwrap();
        assert_eq!((prices.price_of("large"), prices.price_of("small")), (5, 2));
        assert_eq!(MessagePrices::default().price_of("anything"), 1);
        let bad = |entries: Vec<(&str, i64)>| {
            MessagePrices::new(entries.into_iter().map(|(m, c)| (m.to_owned(), c))).unwrap_err()
        };
        assert_eq!(bad(vec![("m", 0)]), MessagePriceError::Price);
        assert_eq!(bad(vec![("m", 10_001)]), MessagePriceError::Price);
        assert_eq!(bad(vec![("m", 1), ("m", 2)]), MessagePriceError::Model);
        assert_eq!(bad(vec![("", 1)]), MessagePriceError::Model);
        assert_eq!(
            bad(vec![("default", 1), ("default", 2)]),
            MessagePriceError::Model
        );
    }
}
