/**
 * The English text the synthetic tokenizer is trained on. Written for this project; it only has to
 * contain ordinary words, numbers, punctuation and contractions so the learned merges look like a
 * real tokenizer's (" the", "ing", " of" ...).
 */
export const CORPUS = `
The river ran past the old mill at the edge of the town. Every morning the miller opened the doors,
checked the wheel and looked at the sky. If the clouds were low, he said, the water would rise by the
evening; if the sky was clear, the grain would be dry and the work would be easy. People in the town
didn't always believe him, but they came to the mill anyway, because his bread was the best for miles.

In the spring of 1921 a storm broke the wheel. The miller's daughter, who was twelve, found a way to
fix it with rope, two iron bars and a door taken from the barn. It wasn't pretty, and it made a noise
like a tired horse, but it turned. She wrote down what she had done in a small notebook: the length of
each bar, the number of turns of rope, the time it took. Years later that notebook was the first thing
she showed to the engineers who came to build the new bridge.

A computer is a machine that follows instructions. It reads a number, adds another number, stores the
result and moves on to the next instruction. Nothing in a single step is clever; the power comes from
doing billions of simple steps every second, in the right order. A program is a list of those steps,
written by people who have to think carefully about every case: what happens when the list is empty,
when the number is negative, when the file is missing, when the network is slow.

Modern language models read text as tokens. A token may be a whole word, part of a word, a number or a
single character. The model sees a sequence of tokens and predicts the next one, again and again. In a
mixture of experts, each layer has many small networks, called experts, and a router that chooses a
few of them for every token. Only the chosen experts do any work, so the model can be large while each
token costs little. The hard part is that the router's choices are uneven: some experts are popular,
some are rarely used, and the popular ones become a bottleneck when many tokens arrive at once.

We're going to the market on Saturday. We'll buy apples, pears, three loaves of bread, a bag of rice,
some cheese and a bottle of olive oil. If it's sunny, we'll walk; if it rains, we'll take the bus at
9:15 and come back before 12:30. Don't forget the list, and don't forget the bags. They've changed the
prices again, so bring about 40 dollars, or 45 to be safe.

The weather today: cloudy in the morning, with light rain in the north. Temperatures between 8 and 14
degrees. Wind from the west at 20 kilometres per hour, becoming stronger in the evening. Tomorrow will
be brighter, with a high of 17 degrees and only a small chance of showers in the afternoon.

Question: why does the moon look larger near the horizon? Answer: it doesn't, really. Its size in the
sky is almost the same; our brain compares it with trees and houses and decides that it must be big.
Photographs taken with the same lens show the moon at the same size, high or low.

To make tea, boil fresh water, warm the pot, add one spoon of leaves for each cup and one for the pot,
pour the water and wait three to five minutes. Stronger tea needs more leaves, not more time; longer
brewing only makes it bitter. Some people add milk first, others add it last. Both are right.

The library opens at ten and closes at six, except on Sundays, when it is closed all day. Children
under eight must come with an adult. Books may be borrowed for three weeks and renewed twice, online
or at the desk. Please return them on time so that other readers can enjoy them too.

She learned to play the piano at the age of seven. Her teacher was patient and strict: scales before
songs, slow before fast, both hands before the pedal. By the time she was sixteen she could play most
of what she heard, and she had started to write her own music, short pieces that sounded like rain on
a window, or like a train leaving a station at night.

Counting is older than writing. Shepherds tied knots in string, traders pressed marks into clay, and
the numbers 1, 2, 3, 10, 100 and 1000 were written in many different ways before the digits we use
today spread from India through the Arab world to Europe. Zero came last, and it changed everything.

"Is this the right train for the coast?" asked the traveller. "It is," said the guard, "but you'll
have to change at the junction. The second half of the train goes north." The traveller thanked him,
found a seat by the window and watched the fields, the farms and the small grey villages pass by.
`;
